"""Virus scanning of admitted media with ClamAV's clamd: every file, by descriptor, cached."""

from guardd.scanning.cache import ScanCache
from guardd.scanning.clamd import (
    Clamd,
    ClamdProtocolError,
    ClamdScanError,
    ClamdUnavailable,
    ClamdVersion,
)
from guardd.scanning.result import (
    FileOutcome,
    FileResult,
    Progress,
    ScanReport,
    ScanVerdict,
    display_path,
)
from guardd.scanning.scanner import ScanEngine, Scanner
from guardd.scanning.walker import count_files, walk

__all__ = [
    "Clamd",
    "ClamdProtocolError",
    "ClamdScanError",
    "ClamdUnavailable",
    "ClamdVersion",
    "FileOutcome",
    "FileResult",
    "Progress",
    "ScanCache",
    "ScanEngine",
    "ScanReport",
    "ScanVerdict",
    "Scanner",
    "count_files",
    "display_path",
    "walk",
]

"""guardd's own configuration file (TOML): where the rules, state and socket live.

Unknown keys are an error, never ignored: a typo in a security daemon's config must not
silently fall back to a default.
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path

from guardd.errors import ErrorCode, GuarddError

DEFAULT_CONFIG = Path("/etc/guardd/guardd.toml")
DEFAULT_SOCKET = Path("/run/guardd/guardd.sock")
DEFAULT_CLAMD_SOCKET = Path("/run/clamav/clamd.ctl")  # Debian's clamav-daemon
MAX_SCAN_WORKERS = 32
MAX_CONFIG_BYTES = 1 << 20

_REQUIRED = ("rules", "state_dir", "socket")
_OPTIONAL = (
    "admin_uids",
    "clamd_socket",
    "exchange_dir",
    "scan_workers",
    "machine_id",
    "trusted_keys",
    "watch_homes",
)
MAX_WATCH_HOMES = 64
_MACHINE_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")


@dataclass(frozen=True)
class DaemonConfig:
    """The daemon's settings, validated."""

    source: Path
    rules: Path
    state_dir: Path
    socket: Path
    admin_uids: frozenset[int] = frozenset({0})
    clamd_socket: Path = DEFAULT_CLAMD_SOCKET
    exchange_dir: Path | None = None
    scan_workers: int = 4
    machine_id: str = ""
    trusted_keys: Path | None = None
    watch_homes: tuple[Path, ...] = (Path("/home"),)

    @property
    def approvers(self) -> Path:
        """The folder of trusted approvers' public keys (one <FPR>.asc each)."""
        return self.trusted_keys or self.state_dir / "trusted-keys"

    @property
    def exchange(self) -> Path:
        """The spool where incidents (and later requests and approvals) are exchanged with IT."""
        return self.exchange_dir or self.state_dir / "exchange"

    @property
    def audit_log(self) -> Path:
        """The audit trail's JSON-lines file."""
        return self.state_dir / "audit.jsonl"

    @property
    def database(self) -> Path:
        """The SQLite store."""
        return self.state_dir / "guardd.db"


def load_config(path: Path) -> DaemonConfig:
    """Read and validate a config file; raise GuarddError(INVALID_CONFIG) with a one-line reason."""
    data = _read_toml(path)
    unknown = sorted(set(data) - set(_REQUIRED) - set(_OPTIONAL))
    if unknown:
        raise _error(
            path, f"unknown key {unknown[0]!r} (known: {', '.join(_REQUIRED + _OPTIONAL)})"
        )
    missing = [k for k in _REQUIRED if k not in data]
    if missing:
        raise _error(path, f"missing key {missing[0]!r}")
    base = path.parent
    return DaemonConfig(
        source=path,
        rules=_path(path, base, data, "rules"),
        state_dir=_path(path, base, data, "state_dir"),
        socket=_path(path, base, data, "socket"),
        admin_uids=_uids(path, data.get("admin_uids", [0])),
        clamd_socket=_path(path, base, data, "clamd_socket")
        if "clamd_socket" in data
        else DEFAULT_CLAMD_SOCKET,
        exchange_dir=_path(path, base, data, "exchange_dir") if "exchange_dir" in data else None,
        scan_workers=_workers(path, data.get("scan_workers", 4)),
        machine_id=_machine_id(path, data.get("machine_id", "")),
        trusted_keys=_path(path, base, data, "trusted_keys") if "trusted_keys" in data else None,
        watch_homes=_homes(path, base, data.get("watch_homes", ["/home"])),
    )


def _read_toml(path: Path) -> dict[str, object]:
    try:
        with path.open("rb") as f:
            raw = f.read(MAX_CONFIG_BYTES + 1)
    except OSError as e:
        raise _error(path, f"cannot read: {e.strerror or e}") from None
    if len(raw) > MAX_CONFIG_BYTES:
        raise _error(path, "file is too large to be a config file")
    try:
        return tomllib.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise _error(path, "not UTF-8 text") from None
    except tomllib.TOMLDecodeError as e:
        raise _error(path, f"not valid TOML: {e}") from None
    except RecursionError:
        raise _error(path, "not valid TOML: nested too deeply") from None


def _path(source: Path, base: Path, data: dict[str, object], key: str) -> Path:
    value = data[key]
    if not isinstance(value, str) or not value or "\0" in value:
        raise _error(source, f"{key!r} must be a non-empty path string")
    p = Path(value)
    return p if p.is_absolute() else (base / p).resolve()


def _homes(source: Path, base: Path, value: object) -> tuple[Path, ...]:
    """The folders whose homes the cloud-sync guard watches (an empty list turns it off)."""
    if not isinstance(value, list) or len(value) > MAX_WATCH_HOMES:
        raise _error(source, f"'watch_homes' must be a list of at most {MAX_WATCH_HOMES} folders")
    homes = [_path(source, base, {"watch_homes": v}, "watch_homes") for v in value]
    if any(h == Path("/") for h in homes):
        raise _error(source, "'watch_homes' cannot be the root folder '/'")
    return tuple(dict.fromkeys(homes))


def _uids(source: Path, value: object) -> frozenset[int]:
    if not isinstance(value, list) or not all(
        isinstance(v, int) and not isinstance(v, bool) and 0 <= v < 2**32 for v in value
    ):
        raise _error(source, "'admin_uids' must be a list of user ids")
    return frozenset(value)


def _workers(source: Path, value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_SCAN_WORKERS:
        raise _error(source, f"'scan_workers' must be a whole number from 1 to {MAX_SCAN_WORKERS}")
    return value


def _machine_id(source: Path, value: object) -> str:
    if value == "":
        return ""
    if not isinstance(value, str) or not _MACHINE_ID.fullmatch(value):
        raise _error(source, "'machine_id' must be 1 to 64 letters, digits, '.', '_' or '-'")
    return value


def _error(path: Path, message: str) -> GuarddError:
    return GuarddError(ErrorCode.INVALID_CONFIG, f"{path}: {message}")

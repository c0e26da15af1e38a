"""The watch roots (config `watch_homes`), each held open by descriptor for the daemon's life."""

from __future__ import annotations

import os
from dataclasses import dataclass

from guardd.cloud.beneath import open_root


@dataclass(frozen=True)
class Place:
    """Where a path is: its watch root, that root's descriptor, and the path under it."""

    root: str
    fd: int
    relative: str

    @property
    def parts(self) -> list[str]:
        """The components under the root: [home, ...]."""
        return self.relative.split("/") if self.relative else []

    @property
    def home(self) -> str:
        """The home's name (the first component)."""
        return self.parts[0] if self.parts else ""

    @property
    def in_home(self) -> str:
        """The path relative to its home ('' for the home itself)."""
        return "/".join(self.parts[1:])


class Roots:
    """The watch roots that could be opened; the others are reported once at start."""

    def __init__(self, paths: list[str]) -> None:
        self.fds: dict[str, int] = {}
        self.missing: dict[str, str] = {}
        for path in paths:
            clean = os.path.normpath(path)
            try:
                self.fds[clean] = open_root(clean)
            except OSError as e:
                self.missing[clean] = e.strerror or str(e)

    def locate(self, path: str) -> Place | None:
        """The place of an absolute path under a root, or None when it is under none."""
        clean = os.path.normpath(path)
        for root, fd in self.fds.items():
            prefix = root.rstrip("/") + "/"
            if clean.startswith(prefix):
                return Place(root, fd, clean[len(prefix) :])
        return None

    def close(self) -> None:
        """Close every root."""
        for fd in self.fds.values():
            os.close(fd)
        self.fds.clear()

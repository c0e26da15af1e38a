"""A real clamd for tests, the demo and benchmarks, with a signature database made here.

No freshclam and no internet: the database is EICAR's hash (test.hdb), a marker string
(test.ndb), and a small unsigned daily container (daily.cud) that carries a version number.
The .cud matters: with only .hdb/.ndb files clamd's VERSION says just "ClamAV 1.4.6", with no
database version, and guardd's scan cache (keyed by that version) could not tell one
database from the next. add_signature() writes the next version; reload() waits for it.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import shutil
import signal
import socket
import subprocess
import tarfile
import time
from pathlib import Path
from types import TracebackType

from sim.env import real_env

EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
EICAR_SIGNATURE = "Eicar-Test-Signature"
MARKER = b"GUARDD-TEST-MARKER"
MARKER_SIGNATURE = "Guardd.Test.Marker"
CLAMD = shutil.which("clamd") or "/usr/sbin/clamd"
FLEVEL = 90  # functionality level the daily container asks for (ClamAV 1.0+ has more)


def _cud(version: int, files: dict[str, bytes]) -> bytes:
    """An unsigned ClamAV container: a 512-byte header, then a gzipped tar whose daily.info
    repeats the header and lists each file's size and SHA-256."""
    now = int(time.time())
    stamp = time.strftime("%d %b %Y %H-%M +0000", time.gmtime(now))
    header = f"ClamAV-VDB:{stamp}:{version}:{len(files)}:{FLEVEL}:{'0' * 32}:X:guardd-sim:{now}"
    info = header + "\n"
    info += "".join(f"{n}:{len(d)}:{hashlib.sha256(d).hexdigest()}\n" for n, d in files.items())
    tar = io.BytesIO()
    with tarfile.open(fileobj=tar, mode="w", format=tarfile.USTAR_FORMAT) as archive:
        for name, data in [("daily.info", info.encode()), *files.items()]:
            member = tarfile.TarInfo(name)
            member.size, member.mtime = len(data), now
            archive.addfile(member, io.BytesIO(data))
    return header.encode().ljust(512, b" ") + gzip.compress(tar.getvalue(), mtime=now)


class ClamdProcess:
    """clamd as a child process in `workdir`, with its own socket, database and log."""

    def __init__(self, workdir: Path, max_file_size: str = "10M") -> None:
        self.workdir = workdir
        self.db_dir = workdir / "db"
        self.socket = workdir / "clamd.sock"
        self.config = workdir / "clamd.conf"
        self.log = workdir / "clamd.log"
        self.db_version = 1
        self.proc: subprocess.Popen[bytes] | None = None
        self._extra: dict[str, str] = {}
        if len(str(self.socket).encode()) > 100:
            raise ValueError(f"socket path too long for a unix socket: {self.socket}")
        (workdir / "tmp").mkdir(parents=True, exist_ok=True)
        self.db_dir.mkdir(exist_ok=True)
        md5 = hashlib.md5(EICAR, usedforsecurity=False).hexdigest()  # the .hdb format's hash
        (self.db_dir / "test.hdb").write_text(f"{md5}:{len(EICAR)}:{EICAR_SIGNATURE}\n")
        (self.db_dir / "test.ndb").write_text(f"{MARKER_SIGNATURE}:0:*:{MARKER.hex()}\n")
        self._write_daily()
        self.config.write_text(
            "Foreground yes\n"
            f"LocalSocket {self.socket}\n"
            f"DatabaseDirectory {self.db_dir}\n"
            f"TemporaryDirectory {workdir / 'tmp'}\n"
            f"LogFile {self.log}\n"
            f"PidFile {workdir / 'clamd.pid'}\n"
            "AlertExceedsMax yes\n"  # past a limit clamd says so instead of a silent OK
            f"MaxFileSize {max_file_size}\n"
            "MaxThreads 4\n"
        )

    def _write_daily(self) -> None:
        lines = "".join(f"{name}:0:*:{hexbytes}\n" for name, hexbytes in self._extra.items())
        # an empty .ndb is refused by clamd: keep one signature nobody's file will match
        files = {"daily.ndb": (lines or f"Guardd.Placeholder:0:*:{os.urandom(16).hex()}\n")}
        tmp = self.db_dir / ".daily.cud.tmp"
        tmp.write_bytes(_cud(self.db_version, {k: v.encode() for k, v in files.items()}))
        tmp.rename(self.db_dir / "daily.cud")  # clamd never reads a half-written database

    def start(self, timeout: float = 30.0) -> None:
        """Start clamd and wait until it answers PING."""
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [CLAMD, f"--config-file={self.config}"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=real_env(),
            )
        deadline = time.monotonic() + timeout
        while self.command(b"PING") != b"PONG":
            if self.proc.poll() is not None:
                raise RuntimeError(f"clamd exited {self.proc.returncode}:\n{self.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"clamd did not answer PING:\n{self.log_text()}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Stop clamd (SIGTERM)."""
        self._end(signal.SIGTERM)

    def kill(self) -> None:
        """Kill clamd at once (SIGKILL): a scanner dying mid-scan."""
        self._end(signal.SIGKILL)

    def _end(self, sig: int) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(timeout=30)
        self.proc = None

    @property
    def running(self) -> bool:
        """Whether the clamd process is alive."""
        return self.proc is not None and self.proc.poll() is None

    def command(self, name: bytes, timeout: float = 5.0) -> bytes:
        """Send one z-command; the answer without its NUL (b'' when clamd is not there)."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(timeout)
                sock.connect(str(self.socket))
                sock.sendall(b"z" + name + b"\0")
                answer = b""
                while not answer.endswith(b"\0"):
                    data = sock.recv(4096)
                    if not data:
                        break
                    answer += data
        except OSError:
            return b""
        return answer.rstrip(b"\0")

    def version(self) -> str:
        """What VERSION says, e.g. 'ClamAV 1.4.6/3/Sun Nov 22 08:18:27 2026'."""
        return self.command(b"VERSION").decode()

    def add_signature(self, name: str, hexbytes: str) -> None:
        """Add a body signature (.ndb style) as a new database version; call reload()."""
        self._extra[name] = hexbytes
        self.db_version += 1
        self._write_daily()

    def reload(self, timeout: float = 30.0) -> None:
        """Make clamd load the database again; return once VERSION shows the new version."""
        if self.command(b"RELOAD") != b"RELOADING":
            raise RuntimeError(f"clamd refused RELOAD:\n{self.log_text()}")
        deadline = time.monotonic() + timeout
        while f"/{self.db_version}/" not in self.version():
            if time.monotonic() > deadline:
                raise RuntimeError(f"clamd did not load version {self.db_version}")
            time.sleep(0.02)

    def log_text(self) -> str:
        """clamd's log so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""

    def __enter__(self) -> ClamdProcess:
        self.start()
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()

"""guardd, the root daemon: the composition root and its event loop.

One place builds every part and hands each its collaborators; the loop is asyncio, with
pyudev's sockets plugged in as readers and the IPC server beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import fcntl
import logging
import os
import signal
import sys
import time
from pathlib import Path

from guardd import __version__
from guardd.audit import AuditLog, JsonValue
from guardd.cloud.service import CloudService
from guardd.config import DEFAULT_CONFIG, DaemonConfig, load_config
from guardd.devices.gate import DeviceGate
from guardd.devices.sysfs import UsbAuthorizer
from guardd.devices.udev_source import BlockEvent, Resync, UdevSource, UsbEvent
from guardd.errors import ErrorCode, GuarddError
from guardd.events import EventBus
from guardd.exceptions.approvals import POLL_SECONDS, ApprovalBook
from guardd.exceptions.book import ExceptionBook
from guardd.exchange.incidents import Incidents, machine_name
from guardd.exchange.spool import Spool, SpoolError
from guardd.handlers import Handlers
from guardd.ipc.server import IpcServer
from guardd.media.closed_files import ClosedFileWatcher
from guardd.media.gate import MediaGate
from guardd.media.mounts import read_mounts
from guardd.media.watch import MountWatcher
from guardd.runner import LoopRunner
from guardd.scanning import Clamd, ScanCache, Scanner
from guardd.service import notify
from guardd.service.journal import record_sink, setup_logging
from guardd.service.usbguard import refuse_beside_usbguard
from guardd.store.cloud import CloudBlocks
from guardd.store.db import Store
from rules import Matcher, RulesError, RuleSet, load_rules

log = logging.getLogger("guardd")


class Daemon:
    """The running guard: sources, gate, store, audit trail and socket, wired once."""

    def __init__(self, config: DaemonConfig, rules: RuleSet) -> None:
        self.config = config
        self._lock = lock_state_dir(config.state_dir)
        self.store = Store.open(config.database)
        self.audit = AuditLog.open(config.audit_log, sink=record_sink())
        self.bus = EventBus()
        self.audit.add_listener(self.bus.publish)
        refuse_beside_usbguard(self.audit)
        self.source = UdevSource()
        self.gate = DeviceGate(
            Matcher(rules), UsbAuthorizer(), self.audit, self.store, clock=time.time
        )
        self.server = IpcServer(config.socket, config.admin_uids)
        self.clamd = Clamd(str(config.clamd_socket))
        self.scanner = Scanner(
            self.clamd,
            ScanCache(config.state_dir / "scancache.db"),
            workers=config.scan_workers,
            accept_limits_exceeded=rules.policy.accept_limits_exceeded,
        )
        machine = config.machine_id or machine_name()
        # The default exchange is a local folder guardd makes; a configured one (a network
        # share) must exist: writing into an unmounted share's mount point would hide files.
        spool = Spool(config.exchange, create_root=config.exchange_dir is None)
        if config.exchange_dir is None:
            spool.ensure_root()
        self.incidents = Incidents(spool, time.time, machine)
        self.exceptions = ExceptionBook(self.store, spool, self.audit, time.time, machine)
        self.approvals = ApprovalBook(
            spool=spool,
            store=self.store,
            audit=self.audit,
            clock=time.time,
            machine_id=machine,
            keys=config.approvers,
            home=config.state_dir / "gnupg",
        )
        self.gate.approvals = self.approvals.for_device
        self.approvals.changed = self._approvals_changed
        self.cloud = CloudService(
            homes=config.watch_homes,
            blocks=CloudBlocks(self.store.connection),
            audit=self.audit,
            rules=rules,
            machine_id=machine,
            approval=self.approvals.for_folder,
        )
        self.media: MediaGate | None = None
        self._runner: LoopRunner | None = None
        self._stop = asyncio.Event()
        self._rules_summary = _summary(rules)

    def _build_media(self, runner: LoopRunner) -> MediaGate:
        return MediaGate(
            scanner=self.scanner,
            ping=self.clamd.ping,
            audit=self.audit,
            incidents=self.incidents,
            switch_off=self.gate.quarantine,
            policy=lambda: self.gate.policy,
            runner=runner,
            read_only=self._read_only,
            watcher=ClosedFileWatcher(),
            holds=self.store,
        )

    def _check_clamd(self) -> None:
        """Say at start whether clamd answers; media stay held until it does."""
        if self.clamd.ping():
            version = self.clamd.version()
            self.audit.append(
                "clamd.checked",
                {"ok": True, "engine": version.engine, "db_version": version.db_version},
            )
            return
        self.audit.append("clamd.checked", {"ok": False, "socket": str(self.config.clamd_socket)})
        log.warning(
            "clamd does not answer at %s: drives will stay read-only", self.config.clamd_socket
        )

    async def run(self) -> int:
        """Run until SIGTERM or SIGINT; never restore a permissive USB default on the way out."""
        loop = asyncio.get_running_loop()
        self.bus.attach(loop)
        self.audit.append("daemon.started", {"version": __version__, "rules": self._rules_summary})
        self._check_clamd()
        self._runner = LoopRunner(loop, workers=4)
        self.media = self._build_media(self._runner)
        self.approvals.load_keys()
        self._poll_exchange()
        self.store.forget_mounts_except({m.mount_id for m in read_mounts()})
        self.gate.media = self.media
        mounts = MountWatcher()
        self.source.start()
        self.gate.start(self.source.present_usb(), self.source.present_block())
        self.exceptions.export_pending()
        self.cloud.start(loop, self._runner)
        for fd in self.source.filenos():
            loop.add_reader(fd, self._on_events)
        loop.add_reader(mounts.fileno(), self._on_mounts, mounts)
        self._register()
        await self.server.start()
        loop.add_signal_handler(signal.SIGTERM, self._stop.set)
        loop.add_signal_handler(signal.SIGINT, self._stop.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload)
        log.info("guardd %s ready on %s", __version__, self.config.socket)
        notify.ready(f"guarding {len(self.gate.devices())} USB devices on {self.config.socket}")
        await self._stop.wait()
        notify.stopping()
        self.bus.drop_all()
        await self.server.stop()
        self.cloud.stop()
        self.audit.append("daemon.stopped", {})
        self.audit.close()
        self.store.close()
        return 0

    def _approvals_changed(self) -> None:
        """An approval began or ended: judge every present device again."""
        changed = self.gate.reload(self.gate.matcher)
        self.audit.append("devices.rejudged", {"cause": "approvals", "changed": changed})
        folders = self.cloud.guard.rejudge()
        if folders:
            self.audit.append("cloud.rejudged", {"cause": "approvals", "changed": folders})

    def _read_only(self, usb_path: str) -> bool:
        """Whether an approval lets this device in for reading only."""
        state = next((s for s in self.gate.devices() if s.sys_path == usb_path), None)
        approval = self.approvals.for_device(state.facts) if state is not None else None
        return approval is not None and approval.read_only

    def _poll_exchange(self) -> None:
        """Look for IT's decisions every few seconds (a network share has no inotify)."""
        runner = self._runner
        if runner is None or self._stop.is_set():
            return

        def done(found: object) -> None:
            if isinstance(found, list):
                self.approvals.apply(found)
            else:
                self.audit.append("approvals.poll_failed", {"error": str(found)})
            self.approvals.expire()
            runner.call_later(POLL_SECONDS, self._poll_exchange)

        runner.submit(self.approvals.collect, done)

    def _on_mounts(self, mounts: MountWatcher) -> None:
        mounts.changes()
        if self.media is not None:
            self.media.mounts_changed()
        self.cloud.guard.mounts_changed()

    def _on_events(self) -> None:
        for event in self.source.drain():
            if isinstance(event, UsbEvent):
                self.gate.usb_event(event)
            elif isinstance(event, BlockEvent):
                self.gate.block_event(event)
            elif isinstance(event, Resync):
                self.audit.append("daemon.resync", {"reason": event.reason})
                self.gate.resync(self.source.present_usb(), self.source.present_block())

    def reload(self) -> dict[str, object]:
        """Load the rules (and the trusted approvers' keys) again; a broken rules file keeps
        the last good rules and says so."""
        self.approvals.load_keys()
        try:
            rules = load_rules(self.config.rules)
        except RulesError as e:
            return self._reload_failed(e)
        self._rules_summary = _summary(rules)
        self.scanner.accept_limits_exceeded = rules.policy.accept_limits_exceeded
        changed = self.gate.reload(Matcher(rules))
        folders = self.cloud.guard.rejudge(rules)
        self.audit.append(
            "rules.reloaded",
            {"rules": self._rules_summary, "changed": changed, "folders_changed": folders},
        )
        return {"reloaded": True, "changed": changed, "folders_changed": folders}

    def _reload_failed(self, error: RulesError) -> dict[str, object]:
        problems = [str(p) for p in error.problems]
        self.audit.append("rules.reload_failed", {"problems": problems, "kept": "previous"})
        log.error("rules not reloaded, keeping the previous ones: %s", problems[:3])
        return {"reloaded": False, "problems": problems}

    def _register(self) -> None:
        handlers = Handlers(self)
        for op, handler in handlers.table().items():
            self.server.register(op, handler)
        for op, opener in handlers.streams().items():
            self.server.register_stream(op, opener)


def lock_state_dir(state_dir: Path) -> int:
    """Hold an exclusive lock on the state folder for the process's life: two daemons on one
    audit trail would break its chain."""
    state_dir.mkdir(parents=True, exist_ok=True, mode=0o750)
    fd = os.open(state_dir / "guardd.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        raise GuarddError(
            ErrorCode.UNAVAILABLE, f"another guardd is already running with {state_dir}"
        ) from None
    return fd


def _summary(rules: RuleSet) -> dict[str, JsonValue]:
    return {"sources": list(rules.sources), "drives": len(rules.drives), "cloud": len(rules.cloud)}


def main(argv: list[str] | None = None) -> int:
    """`guardd --config FILE`: exit 2 with one clear line when the config or rules are broken."""
    parser = argparse.ArgumentParser(prog="guardd", description="USB storage guard daemon")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG, help="guardd.toml")
    parser.add_argument("--version", action="version", version=f"guardd {__version__}")
    args = parser.parse_args(argv)
    setup_logging()
    try:
        config = load_config(args.config)
        rules = load_rules(config.rules)
        daemon = Daemon(config, rules)
    except GuarddError as e:
        print(f"guardd: {e}", file=sys.stderr)
        return 2
    except RulesError as e:
        print(f"guardd: refusing to start: the rules are broken\n{e}", file=sys.stderr)
        return 2
    except SpoolError as e:
        print(f"guardd: cannot start: {e}", file=sys.stderr)
        return 2
    except OSError as e:
        print(f"guardd: cannot start: {e.strerror or e}: {e.filename or ''}", file=sys.stderr)
        return 2
    try:
        return asyncio.run(daemon.run())
    except GuarddError as e:
        print(f"guardd: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

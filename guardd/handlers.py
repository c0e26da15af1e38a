"""What guardd answers on its socket: one handler per operation of the protocol.

Each handler gets the caller (from SO_PEERCRED) and the request's arguments (already shape-
checked by the protocol module, still untrusted in their values); the server has already
checked the privilege the protocol declares for the operation.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from guardd import __version__
from guardd.ipc.protocol import Op
from guardd.ipc.server import Handler, Peer

if TYPE_CHECKING:
    from guardd.daemon import Daemon


class Handlers:
    """The daemon's answers, bound to its parts."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def table(self) -> dict[Op, Handler]:
        """Every operation guardd serves."""
        return {
            Op.HELLO: self.hello,
            Op.DEVICES: self.devices,
            Op.RELOAD: self.reload,
            Op.STATS: self.stats,
            Op.REQUEST: self.request,
            Op.REQUESTS: self.requests,
            Op.CLOUD: self.cloud,
        }

    def _admin(self, peer: Peer) -> bool:
        return peer.uid in self._daemon.config.admin_uids

    async def hello(self, peer: Peer, args: dict[str, Any]) -> object:
        """Who guardd is, and who the caller is to it."""
        return {
            "version": __version__,
            "user": peer.user,
            "uid": peer.uid,
            "admin": self._admin(peer),
        }

    async def devices(self, peer: Peer, args: dict[str, Any]) -> object:
        """Every present device with its verdict (and its scan, for drives)."""
        views = []
        for state in self._daemon.gate.devices():
            view = state.view()
            warning = self._daemon.approvals.expiring(state.facts)
            if warning:
                view["warning"] = warning
            views.append(view)
        media = self._daemon.media
        return [media.annotate(v) for v in views] if media else views

    async def reload(self, peer: Peer, args: dict[str, Any]) -> object:
        """Read the rules again."""
        return self._daemon.reload()

    async def stats(self, peer: Peer, args: dict[str, Any]) -> object:
        """guardd's own latency and memory figures."""
        gate = self._daemon.gate
        if args.get("reset") is True:
            gate.enforce_latency.reset()
        return {
            "uevent_to_enforcement": gate.enforce_latency.summary(),
            "devices": len(gate.devices()),
            "rss_kb": rss_kb(),
        }

    async def request(self, peer: Peer, args: dict[str, Any]) -> object:
        """Staff ask for an exception for a device or a cloud-sync folder they see blocked."""
        folder = args.get("folder")
        if folder is not None:
            sync = self._daemon.cloud.guard.find(folder) if isinstance(folder, str) else None
            return self._daemon.exceptions.request_folder(peer, sync, args)
        device_id = args.get("device")
        found = self._daemon.gate.find(device_id) if isinstance(device_id, str) else None
        return self._daemon.exceptions.request(peer, found, args)

    async def requests(self, peer: Peer, args: dict[str, Any]) -> object:
        """The caller's requests (IT: everyone's, with all=true)."""
        everyone = args.get("all") is True and self._admin(peer)
        return self._daemon.exceptions.views(None if everyone else peer.uid)

    async def cloud(self, peer: Peer, args: dict[str, Any]) -> object:
        """The cloud-sync folders found: the caller's own (IT: everyone's, with all=true)."""
        everyone = args.get("all") is True and self._admin(peer)
        return self._daemon.cloud.guard.folders(None if everyone else peer.uid)


def rss_kb() -> int:
    """This process's resident memory in KiB (0 when unknown)."""
    try:
        with open("/proc/self/status") as f:
            return next(int(x.split()[1]) for x in f if x.startswith("VmRSS:"))
    except (OSError, StopIteration, ValueError):
        return 0

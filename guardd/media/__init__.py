"""Media hold: keep an admitted drive's volumes read-only until they are scanned."""

from guardd.media.blockdev import MediaError, device_number, is_read_only, set_read_only
from guardd.media.mounts import Mount, hold, mounts_of, read_mounts, release
from guardd.media.watch import MountWatcher

__all__ = [
    "MediaError",
    "Mount",
    "MountWatcher",
    "device_number",
    "hold",
    "is_read_only",
    "mounts_of",
    "read_mounts",
    "release",
    "set_read_only",
]

"""The environment for real tools run from a test process that holds a umockdev testbed."""

from __future__ import annotations

import os


def real_env() -> dict[str, str]:
    """The environment without umockdev's preload and testbed: a process that made a testbed
    has UMOCKDEV_DIR in its C environment, which children would otherwise inherit, and then
    losetup, mount, mkfs and clamd would see a mock /dev and /sys."""
    return {k: v for k, v in os.environ.items() if k not in ("LD_PRELOAD", "UMOCKDEV_DIR")}

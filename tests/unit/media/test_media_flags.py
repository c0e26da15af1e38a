"""The mount(2) flags a hold and a release pass, from a mount's per-mount options."""

from __future__ import annotations

import pytest

from guardd.media import mounts as m


def test_hold_keeps_relatime_and_adds_the_four_restrictions() -> None:
    flags = m.hold_flags(frozenset({"rw", "relatime"}))
    assert flags == (
        m.MS_REMOUNT
        | m.MS_BIND
        | m.MS_RDONLY
        | m.MS_NOSUID
        | m.MS_NODEV
        | m.MS_NOEXEC
        | m.MS_RELATIME
    )


def test_release_restores_exactly_the_recorded_options() -> None:
    options = frozenset({"rw", "nosuid", "nodev", "noatime", "nodiratime"})
    flags = m.release_flags(options)
    assert flags == m.MS_REMOUNT | m.MS_BIND | m.MS_NOSUID | m.MS_NODEV | m.MS_NOATIME | (
        m.MS_NODIRATIME
    )


@pytest.mark.parametrize(
    ("options", "atime"),
    [
        ({"rw", "relatime"}, m.MS_RELATIME),
        ({"rw", "noatime"}, m.MS_NOATIME),
        ({"rw"}, m.MS_STRICTATIME),
        ({"rw", "nodiratime"}, m.MS_STRICTATIME | m.MS_NODIRATIME),
    ],
)
def test_atime_mode_is_always_explicit(options: set[str], atime: int) -> None:
    mask = m.MS_NOATIME | m.MS_RELATIME | m.MS_STRICTATIME | m.MS_NODIRATIME
    assert m.release_flags(frozenset(options)) & mask == atime
    assert m.hold_flags(frozenset(options)) & mask == atime


def test_release_of_a_read_only_noexec_mount_keeps_them() -> None:
    flags = m.release_flags(frozenset({"ro", "noexec", "nosymfollow", "relatime"}))
    assert flags & m.MS_RDONLY
    assert flags & m.MS_NOEXEC
    assert flags & m.MS_NOSYMFOLLOW
    assert not flags & m.MS_NOSUID


def test_unknown_options_add_nothing() -> None:
    assert m.release_flags(frozenset({"rw", "relatime", "weird"})) == m.release_flags(
        frozenset({"rw", "relatime"})
    )

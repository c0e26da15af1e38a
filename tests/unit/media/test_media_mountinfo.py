"""mountinfo parsing: escapes, optional fields, hostile and malformed lines."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from guardd.media import MediaError, Mount, mounts_of, read_mounts
from guardd.media.mounts import parse_line, parse_mountinfo, unescape

ROOT = b"22 1 253:1 / / rw,relatime shared:1 - ext4 /dev/mapper/vg-root rw,errors=remount-ro"
STICK = (
    rb"731 29 8:17 / /media/anna/MY\040STICK\011x\012y\134z rw,nosuid,nodev,relatime"
    rb" shared:12 master:3 - vfat /dev/sdb1 rw,fmask=0022,dmask=0022,codepage=437"
)
EXFAT = b"98 29 0:61 / /media/anna/EXAM rw,nosuid,nodev,relatime - fuse.exfat /dev/sdc1 rw"


def test_plain_line_with_one_optional_field() -> None:
    mount = parse_line(ROOT)
    assert mount == Mount(
        mount_id=22,
        major=253,
        minor=1,
        root="/",
        mountpoint="/",
        options=frozenset({"rw", "relatime"}),
        fstype="ext4",
        source="/dev/mapper/vg-root",
        super_options=frozenset({"rw", "errors=remount-ro"}),
    )


def test_escapes_and_two_optional_fields() -> None:
    mount = parse_line(STICK)
    assert mount is not None
    assert mount.mountpoint == "/media/anna/MY STICK\tx\ny\\z"
    assert (mount.mount_id, mount.major, mount.minor) == (731, 8, 17)
    assert mount.options == frozenset({"rw", "nosuid", "nodev", "relatime"})
    assert mount.fstype == "vfat"
    assert mount.source == "/dev/sdb1"
    assert "codepage=437" in mount.super_options


def test_no_optional_fields() -> None:
    mount = parse_line(EXFAT)
    assert mount is not None
    assert (mount.major, mount.minor, mount.fstype) == (0, 61, "fuse.exfat")


def test_a_dash_in_a_path_is_escaped_text_not_the_separator() -> None:
    # A user's folder named " - ext4 /dev/sda1 rw" arrives escaped and stays one field.
    line = rb"40 29 0:50 / /home/u/\040-\040ext4\040/dev/sda1 rw - fuse.sshfs me@host rw"
    mount = parse_line(line)
    assert mount is not None
    assert mount.mountpoint == "/home/u/ - ext4 /dev/sda1"
    assert mount.source == "me@host"


def test_empty_source_is_kept() -> None:
    mount = parse_line(b"41 29 0:51 / /mnt/x rw - tmpfs  rw,size=10k")
    assert mount is not None
    assert mount.source == ""


def test_non_utf8_path_round_trips_as_bytes() -> None:
    mount = parse_line(b"41 29 0:51 / /mnt/\xff rw - tmpfs tmpfs rw")
    assert mount is not None
    assert os.fsencode(mount.mountpoint) == b"/mnt/\xff"


@pytest.mark.parametrize(
    "line",
    [
        b"",
        b"garbage",
        b"22 1 253:1 / / rw,relatime shared:1 ext4 /dev/root rw",  # no separator
        b"22 1 253:1 / / - ext4 /dev/root rw",  # no mount options
        b"x 1 253:1 / / rw - ext4 /dev/root rw",  # mount id not a number
        b"-1 1 253:1 / / rw - ext4 /dev/root rw",
        b"22 1 253-1 / / rw - ext4 /dev/root rw",  # bad major:minor
        b"22 1 253:1: / / rw - ext4 /dev/root rw",
        b"22 1 253:1 / / rw - ext4 /dev/root",  # no super options
        b"22 1 253:1 / / rw - ext4 /dev/root rw extra",  # one field too many
        b"22 1 253:1 /  rw - ext4 /dev/root rw",  # empty mount point
        b"22 1 253:1 / / rw -  /dev/root rw",  # empty fstype
        b"99999999999 1 253:1 / / rw - ext4 /dev/root rw",  # absurd id
        b"22 1 1:99999999999 / / rw - ext4 /dev/root rw",
    ],
)
def test_malformed_lines_are_skipped(line: bytes) -> None:
    assert parse_line(line) is None
    assert parse_mountinfo(b"\n".join([ROOT, line, EXFAT])) == [parse_line(ROOT), parse_line(EXFAT)]


def test_escape_out_of_byte_range_is_left_as_text() -> None:
    assert unescape(rb"/a\777b\04") == "/a\\777b\\04"


def test_read_mounts_from_a_file(tmp_path: Path) -> None:
    path = tmp_path / "mountinfo"
    path.write_bytes(b"\n".join([ROOT, b"bad line", STICK, EXFAT]) + b"\n")
    assert [m.mount_id for m in read_mounts(str(path))] == [22, 731, 98]


def test_read_mounts_missing_file_is_a_media_error(tmp_path: Path) -> None:
    with pytest.raises(MediaError, match="cannot read"):
        read_mounts(str(tmp_path / "absent"))


def test_read_mounts_of_this_process_has_a_root() -> None:
    assert any(m.mountpoint == "/" for m in read_mounts())


def test_mounts_of_matches_device_number_only() -> None:
    mounts = parse_mountinfo(b"\n".join([ROOT, STICK, EXFAT]))
    assert [m.mount_id for m in mounts_of("/dev/sdb1", 8, 17, mounts)] == [731]
    # A plain FUSE mount whose fsname claims to be /dev/sdc1 (anonymous 0:61) is not the
    # drive: any FUSE user can choose that name.
    assert mounts_of("/dev/sdc1", 8, 33, mounts) == []
    assert mounts_of("/dev/sdd1", 8, 49, mounts) == []


def _escape(path: bytes) -> bytes:
    return b"".join(b"\\%03o" % c if c in b" \t\n\\" else bytes([c]) for c in path)


@given(st.binary(min_size=1, max_size=40).filter(lambda b: b"\0" not in b))
def test_escaped_paths_round_trip(raw: bytes) -> None:
    line = b"50 29 0:70 / /m/" + _escape(raw) + b" rw - fuse.x " + _escape(raw) + b" rw"
    mount = parse_line(line)
    assert mount is not None
    assert os.fsencode(mount.mountpoint) == b"/m/" + raw
    assert os.fsencode(mount.source) == raw


@given(st.binary(max_size=300))
def test_parse_never_raises(data: bytes) -> None:
    for mount in parse_mountinfo(data):
        assert isinstance(mount, Mount)


@given(st.lists(st.sampled_from([b" ", b"-", b"1", b":", b"\\", b"\n", b"0", b"/", b"rw"])))
def test_parse_never_raises_on_near_miss_lines(parts: list[bytes]) -> None:
    parse_mountinfo(b"".join(parts))

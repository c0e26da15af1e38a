"""Trusted approver keys: the folder guard-admin manages and the home the daemon verifies with."""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from test_signing_support import Homes, homes_fixture  # noqa: F401 - a fixture by name

from signing import (
    GpgUnavailable,
    Refused,
    TrustError,
    Verifier,
    add_key,
    build_home,
    list_keys,
    make_denial,
    normalize_fpr,
    remove_key,
    seal,
)
from signing.gpg import Gpg
from signing.trust import HOME_MARKER

REQUEST = {
    "id": "req-1",
    "machine_id": "m1",
    "user": "alice",
    "uid": 1001,
    "device": {"serial": "S1", "vendor_id": "0781", "product_id": "5581"},
}


def keys_folder(homes: Homes) -> Path:
    folder = homes.folder("gs-keys-")
    folder.chmod(0o755)
    return folder


def trust_error(folder: Path, data: bytes) -> str:
    with pytest.raises(TrustError) as caught:
        add_key(folder, data)
    assert "\n" not in str(caught.value)
    return str(caught.value)


def test_add_list_remove(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    folder = keys_folder(homes)
    assert add_key(folder, it.public(a)) == a
    assert add_key(folder, it.public(b)) == b
    path = folder / f"{a}.asc"
    assert path.read_bytes().startswith(b"-----BEGIN PGP PUBLIC KEY BLOCK-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    listed = {info.fpr: info for info in list_keys(folder)}
    assert set(listed) == {a, b}
    assert listed[a].uids == ("IT approver A <a@school.example>",)
    assert (listed[a].expires, listed[a].revoked, listed[a].expired) == (None, False, False)
    remove_key(folder, " ".join(a[i : i + 4] for i in range(0, 40, 4)).lower())
    assert [info.fpr for info in list_keys(folder)] == [b]
    with pytest.raises(TrustError, match=f"key {a} is not a trusted approver here"):
        remove_key(folder, a)


def test_add_key_refuses_two_keys_a_secret_key_and_garbage(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    folder = keys_folder(homes)
    assert trust_error(folder, it.public(a, b)) == (
        f"the key file holds 2 keys ({a}, {b}); give one key per file"
    )
    assert trust_error(folder, it.secret(a)) == (
        "the key file holds a secret key: give the public key only (gpg --export)"
    )
    assert trust_error(folder, b"hello, I am a key") == "the key file holds no OpenPGP public key"
    assert trust_error(folder, b"") == "the key file holds no OpenPGP public key"
    signature = it.sign(b"data", a).encode()
    assert trust_error(folder, signature) == "the key file holds no OpenPGP public key"
    assert "at most 256 KiB" in trust_error(folder, b"x" * (300 * 1024))
    assert os.listdir(folder) == []


def test_expiry_and_revocation_are_listed_and_a_revocation_is_never_lost(homes: Homes) -> None:
    it = homes.keyring()
    r = it.new_key("IT approver R")
    e = it.new_key_in_the_past("IT approver E", days_ago=10, expire="1d")
    original = it.public(r)
    folder = keys_folder(homes)
    add_key(folder, it.public(e))
    it.revoke(r)
    add_key(folder, it.public(r))
    add_key(folder, original)  # an old copy re-added: merged, the revocation stays
    listed = {info.fpr: info for info in list_keys(folder)}
    assert listed[r].revoked
    assert listed[e].expired
    expires = listed[e].expires
    assert expires is not None
    assert expires < time.time()


def test_build_home_holds_exactly_the_trusted_keys(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    folder = keys_folder(homes)
    add_key(folder, it.public(a))
    add_key(folder, it.public(b))
    home = homes.folder("gs-v-") / "home"
    assert build_home(folder, home) == {a, b}
    assert stat.S_IMODE(home.stat().st_mode) == 0o700
    assert (home / HOME_MARKER).is_file()
    assert {key.fingerprint for key in Gpg(home, isolated=True).public_keys()} == {a, b}
    assert not list((home.parent).glob(".home.*"))  # nothing left over from the swap

    raw = seal(make_denial(REQUEST, approver_fpr=b, reason="no", now=time.time()), Gpg(it.home))
    assert Verifier(home, frozenset({a, b})).verify(raw).approver == b
    remove_key(folder, b)
    pinned = build_home(folder, home)
    assert pinned == {a}
    assert {key.fingerprint for key in Gpg(home, isolated=True).public_keys()} == {a}
    with pytest.raises(Refused, match=f"signed by key {b}, which is not a trusted approver"):
        Verifier(home, pinned).verify(raw)


def test_an_empty_folder_trusts_nobody(homes: Homes) -> None:
    home = homes.folder("gs-v-") / "home"
    assert build_home(keys_folder(homes), home) == frozenset()


def test_build_home_never_replaces_a_folder_it_did_not_build(homes: Homes) -> None:
    folder = keys_folder(homes)
    precious = homes.folder("gs-p-")
    (precious / "thesis.odt").write_text("years of work")
    with pytest.raises(TrustError, match="it is not a home guardd built"):
        build_home(folder, precious)
    assert (precious / "thesis.odt").read_text() == "years of work"


def test_a_bad_folder_refuses_the_whole_build(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    home = homes.folder("gs-v-") / "home"

    folder = keys_folder(homes)
    (folder / f"{a}.asc").write_bytes(it.public(b))  # a file whose name lies
    with pytest.raises(TrustError, match=f"{a}.asc holds key {b}, not the one its name says"):
        build_home(folder, home)
    assert not home.exists()

    folder = keys_folder(homes)
    (folder / "README.txt").write_text("keys go here")
    with pytest.raises(TrustError, match=r"README\.txt is not a key file"):
        build_home(folder, home)

    folder = keys_folder(homes)
    target = homes.folder("gs-t-") / "key.asc"
    target.write_bytes(it.public(a))
    (folder / f"{a}.asc").symlink_to(target)
    with pytest.raises(TrustError, match=f"cannot read {a}.asc"):
        build_home(folder, home)

    folder = keys_folder(homes)
    folder.chmod(0o777)
    with pytest.raises(TrustError, match="is writable by other users"):
        build_home(folder, home)

    with pytest.raises(TrustError, match="does not exist"):
        build_home(folder / "missing", home)


def test_a_failed_rebuild_keeps_the_previous_home(homes: Homes) -> None:
    it = homes.keyring()
    a = it.new_key("IT approver A")
    folder = keys_folder(homes)
    add_key(folder, it.public(a))
    home = homes.folder("gs-v-") / "home"
    build_home(folder, home)
    (folder / "junk").write_text("x")
    with pytest.raises(TrustError):
        build_home(folder, home)
    assert {key.fingerprint for key in Gpg(home, isolated=True).public_keys()} == {a}


def test_fingerprints_not_key_ids() -> None:
    assert normalize_fpr("0x" + "ab" * 20) == "AB" * 20
    with pytest.raises(TrustError, match="not a full fingerprint"):
        normalize_fpr("BEFEDA4ECF8E3502")


def test_gpg_missing(homes: Homes) -> None:
    with pytest.raises(GpgUnavailable, match="gpg is not installed"):
        add_key(keys_folder(homes), b"key", gpg_binary="/nonexistent/gpg")

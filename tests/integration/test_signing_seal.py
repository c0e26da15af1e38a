"""IT's side with real gpg: choosing the key, sealing, and seal's check of its own work."""

from __future__ import annotations

import time

import pytest
from test_signing_support import Homes, gpg_cli, homes_fixture  # noqa: F401 - a fixture by name

from signing import (
    GpgError,
    GpgUnavailable,
    SigningError,
    TrustError,
    make_approval,
    read_envelope,
    seal,
    signing_key,
)
from signing.document import canonical
from signing.gpg import Gpg
from signing.verify import unverified_document

REQUEST = {
    "id": "req-1",
    "machine_id": "m1",
    "user": "alice",
    "uid": 1001,
    "device": {"serial": "S1", "vendor_id": "0781", "product_id": "5581"},
}


def approval(fpr: str) -> bytes:
    doc = make_approval(
        REQUEST, approver_fpr=fpr, duration_s=3600, read_only=False, now=time.time()
    )
    return canonical(doc)


def test_the_only_secret_key_is_picked(homes: Homes) -> None:
    it = homes.keyring()
    a = it.new_key("IT approver A")
    gpg = Gpg(it.home)
    assert signing_key(gpg) == a
    doc = make_approval(REQUEST, approver_fpr=a, duration_s=3600, read_only=True, now=time.time())
    raw = seal(doc, gpg)
    assert unverified_document(raw) == doc
    assert read_envelope(raw).signed_bytes == canonical(doc)


def test_several_keys_need_a_choice(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    b_sub = it.add_signing_subkey(b)
    gpg = Gpg(it.home)
    with pytest.raises(SigningError) as caught:
        signing_key(gpg)
    message = str(caught.value)
    assert message.startswith("several secret keys can sign, choose one with --key: ")
    assert f"{a} (IT approver A <a@school.example>)" in message
    assert f"{b} (IT approver B <b@school.example>)" in message
    assert signing_key(gpg, b.lower()) == b
    assert signing_key(gpg, b_sub) == b  # a subkey's fingerprint names its primary
    with pytest.raises(SigningError, match="there is no secret key 0000"):
        signing_key(gpg, "0" * 40)
    with pytest.raises(TrustError, match="key ids are not accepted"):
        signing_key(gpg, a[-16:])


def test_no_key_or_an_expired_key(homes: Homes) -> None:
    it = homes.keyring()
    with pytest.raises(SigningError, match="no usable secret signing key"):
        signing_key(Gpg(it.home))
    e = it.new_key_in_the_past("IT approver E", days_ago=10, expire="1d")
    with pytest.raises(SigningError, match="no usable secret signing key"):
        signing_key(Gpg(it.home))
    with pytest.raises(SigningError, match=f"key {e} cannot sign"):
        signing_key(Gpg(it.home), e)


def test_the_key_must_be_the_documents_approver(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    doc = make_approval(REQUEST, approver_fpr=a, duration_s=60, read_only=True, now=time.time())
    with pytest.raises(SigningError, match=f"names approver {a}, but the key is {b}"):
        seal(doc, Gpg(it.home), b)


def test_seal_catches_a_gpg_conf_that_adds_a_second_signer(homes: Homes) -> None:
    it = homes.keyring()
    a, b = it.new_key("IT approver A"), it.new_key("IT approver B")
    (it.home / "gpg.conf").write_text(f"local-user {b}\n")
    doc = make_approval(REQUEST, approver_fpr=a, duration_s=60, read_only=True, now=time.time())
    with pytest.raises(GpgError) as caught:
        seal(doc, Gpg(it.home), a)
    assert str(caught.value) == (
        "the signature gpg made does not check out: "
        "the document carries 2 signatures; exactly one is required"
    )


def test_text_mode_in_gpg_conf_is_overridden(homes: Homes) -> None:
    it = homes.keyring()
    a = it.new_key("IT approver A")
    (it.home / "gpg.conf").write_text("textmode\n")
    doc = make_approval(REQUEST, approver_fpr=a, duration_s=60, read_only=True, now=time.time())
    assert unverified_document(seal(doc, Gpg(it.home))) == doc


def test_a_passphrase_is_never_ours_to_give(homes: Homes) -> None:
    """A protected key with no pinentry able to ask (no terminal here): a clear error, quickly,
    and nothing of ours ever held the passphrase."""
    it = homes.keyring()
    (it.home / "gpg-agent.conf").write_text("s2k-count 65536\n")  # protect quickly: 0.1 s, not 2.5
    done = gpg_cli(
        it.home, "--passphrase", "s3cret", "--quick-gen-key", "P <p@school.example>", "ed25519",
        "sign", "never",
    )  # fmt: skip
    fpr = [line.split()[-1] for line in done.stderr.decode().splitlines() if "KEY_CREATED" in line]
    started = time.monotonic()
    with pytest.raises(GpgError, match=f"gpg could not sign with key {fpr[0]}"):
        Gpg(it.home).sign_detached(b"data", fpr[0])
    assert time.monotonic() - started < 30


def test_gpg_missing_when_signing(homes: Homes, monkeypatch: pytest.MonkeyPatch) -> None:
    it = homes.keyring()
    monkeypatch.setenv("PATH", "")
    with pytest.raises(GpgUnavailable, match="gpg is not installed"):
        Gpg(it.home)

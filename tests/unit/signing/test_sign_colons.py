"""gpg's colon listings (captured from gpg 2.2.40 --show-keys / --list-secret-keys)."""

from __future__ import annotations

from signing.colons import parse_colons, unescape

A = "1F00298DED71142932DED7B8D6A28D3959FE9E66"
B = "3BAC23063C54072EEF1D001BF3051743147B933A"
B_SUB = "CEE97C00510D9DB49162A958F356328B0011B35E"

TWO_PUBLIC = f"""\
pub:-:255:22:D6A28D3959FE9E66:1795337321:::-:::scSC:::::ed25519:::0:
fpr:::::::::{A}:
uid:-::::1795337321::A767806369904AF421E3567AAA4396FD3361C397::A <x@school.example>::::::::::0:
pub:u:255:22:F3051743147B933A:1795337321:::u:::scSC:::::ed25519:::0:
fpr:::::::::{B}:
uid:u::::1795337321::8A8A::IT\\x3a Office Zo\\xc3\\xab <b@x>::::::::::0:
uid:r::::1795337321::8A8B::Old name <old@x>::::::::::0:
sub:u:255:22:F356328B0011B35E:1795337324::::::s:::::ed25519::
fpr:::::::::{B_SUB}:
"""

SECRET = f"""\
sec:-:255:22:D6A28D3959FE9E66:1795337321:::-:::scSC:::#::ed25519:::0:
fpr:::::::::{A}:
grp:::::::::851A9D41149B6B3418AE860DFDDDAB4C2195594B:
uid:-::::1795337321::A767806369904AF421E3567AAA4396FD3361C397::A <x@school.example>::::::::::0:
ssb:u:255:22:F356328B0011B35E:1795337324::::::s:::+::ed25519::
fpr:::::::::{B_SUB}:
"""

REVOKED_EXPIRED = """\
pub:r:255:22:AADC97C762A50D29:1795337335:::-:::sc:::::ed25519:::0:
fpr:::::::::879A7C94925C20E86674A9F8AADC97C762A50D29:
uid:r::::1795337335::E29A::R <r@x>::::::::::0:
pub:e:255:22:526D5FDFEADF4D0E:1794473345:1794559745::-:::sc:::::ed25519:::0:
fpr:::::::::A7419BD070E296E171DF41DA526D5FDFEADF4D0E:
"""


def test_two_public_keys_with_subkey_and_escaped_uid() -> None:
    first, second = parse_colons(TWO_PUBLIC)
    assert (first.fingerprint, first.secret, first.uids) == (A, False, ("A <x@school.example>",))
    assert first.can_sign
    assert first.created == 1795337321
    assert first.expires is None
    assert second.fingerprint == B
    assert second.uids == ("IT: Office Zoë <b@x>", "Old name <old@x>")
    assert [(sub.fingerprint, sub.caps, sub.secret) for sub in second.subkeys] == [
        (B_SUB, "s", False)
    ]


def test_secret_listing() -> None:
    (key,) = parse_colons(SECRET)
    assert key.secret
    assert key.fingerprint == A
    assert key.subkeys[0].secret


def test_revoked_and_expired() -> None:
    revoked, expired = parse_colons(REVOKED_EXPIRED)
    assert revoked.revoked
    assert not revoked.expired
    assert not revoked.can_sign  # "sc": the key as a whole can no longer sign
    assert expired.expired
    assert expired.expires == 1794559745


def test_nothing_or_noise() -> None:
    assert parse_colons("") == []
    assert parse_colons("gpg: no valid OpenPGP data found.\ntru::1:1:0:3:1:5\n") == []


def test_unescape() -> None:
    assert unescape("a\\x3ab") == "a:b"
    assert unescape("\\xff") == "\ufffd"

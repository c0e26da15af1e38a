"""gpg status lines read into signatures, and the signature check on literal status texts.

The texts are what gpg 2.2.40 wrote with --status-fd (human lines included, as python-gnupg
hands them over); they were captured from real runs with throw-away ed25519 keys.
"""

from __future__ import annotations

import pytest

from signing import Refused, SigState, parse_status
from signing.status import parse_time, parse_validsig, status_lines
from signing.verify import check_signature

A = "81212320B7FAC835D9DB4171BEFEDA4ECF8E3502"
B = "3BAC23063C54072EEF1D001BF3051743147B933A"
C = "29EBE1CA2A41A48414B5393C6FB6CA8439EAF139"
C_SUB = "2DB9AD36E11D8FF5A461215031F9D935A81507D2"
E = "A7419BD070E296E171DF41DA526D5FDFEADF4D0E"
R = "879A7C94925C20E86674A9F8AADC97C762A50D29"

GOOD = f"""\
[GNUPG:] NEWSIG
gpg: Signature made Sun Nov 22 08:48:34 2026 UTC
gpg:                using EDDSA key {A}
[GNUPG:] KEY_CONSIDERED {A} 0
[GNUPG:] SIG_ID MChy4A/cN3Ppst+MhI3RvJRr84c 2026-11-22 1795337314
[GNUPG:] KEY_CONSIDERED {A} 0
[GNUPG:] GOODSIG BEFEDA4ECF8E3502 IT A <a@school.example>
gpg: Good signature from "IT A <a@school.example>" [unknown]
[GNUPG:] VALIDSIG {A} 2026-11-22 1795337314 0 4 0 22 8 00 {A}
[GNUPG:] KEY_CONSIDERED {A} 0
[GNUPG:] TRUST_UNDEFINED 0 pgp
gpg: WARNING: This key is not certified with a trusted signature!
gpg:          There is no indication that the signature belongs to the owner.
Primary key fingerprint: 8121 2320 B7FA C835 D9DB  4171 BEFE DA4E CF8E 3502
"""

SUBKEY = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {C} 0
[GNUPG:] SIG_ID DJwOxB0bAXx2rRDOr+yFoTLIwGM 2026-11-22 1795337624
[GNUPG:] KEY_CONSIDERED {C} 0
[GNUPG:] GOODSIG 31F9D935A81507D2 C <c@x>
[GNUPG:] VALIDSIG {C_SUB} 2026-11-22 1795337624 0 4 0 22 8 00 {C}
[GNUPG:] KEY_CONSIDERED {C} 0
[GNUPG:] TRUST_UNDEFINED 0 pgp
"""

TWO = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {A} 0
[GNUPG:] SIG_ID p1hCJgJHpa3oLrUsj6yhRr/1eMk 2026-11-22 1795337321
[GNUPG:] GOODSIG BEFEDA4ECF8E3502 A <x@school.example>
[GNUPG:] VALIDSIG {A} 2026-11-22 1795337321 0 4 0 22 8 00 {A}
[GNUPG:] TRUST_UNDEFINED 0 pgp
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {B} 0
[GNUPG:] SIG_ID coeH74h4xk5jReTiQ1cx3SUAKPs 2026-11-22 1795337321
[GNUPG:] GOODSIG F3051743147B933A B <x@school.example>
[GNUPG:] VALIDSIG {B} 2026-11-22 1795337321 0 4 0 22 8 00 {B}
[GNUPG:] TRUST_UNDEFINED 0 pgp
"""

BAD = f"""\
[GNUPG:] NEWSIG
gpg: Signature made Sun Nov 22 08:48:34 2026 UTC
[GNUPG:] KEY_CONSIDERED {A} 0
[GNUPG:] KEY_CONSIDERED {A} 0
[GNUPG:] BADSIG BEFEDA4ECF8E3502 IT A <a@school.example>
gpg: BAD signature from "IT A <a@school.example>" [unknown]
[GNUPG:] FAILURE gpg-exit 33554433
"""

EXPIRED_KEY = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {E} 0
[GNUPG:] KEYEXPIRED 1794559745
[GNUPG:] SIG_ID 4tGO2DwOhg/inu5sS7CiFk3m8xU 2026-11-12 1794476945
[GNUPG:] KEY_CONSIDERED {E} 0
[GNUPG:] EXPKEYSIG 526D5FDFEADF4D0E E <e@x>
gpg: Good signature from "E <e@x>" [expired]
[GNUPG:] VALIDSIG {E} 2026-11-12 1794476945 0 4 0 22 8 00 {E}
[GNUPG:] KEY_CONSIDERED {E} 0
gpg: Note: This key has expired!
"""

REVOKED_KEY = f"""\
[GNUPG:] NEWSIG
[GNUPG:] KEY_CONSIDERED {R} 0
[GNUPG:] SIG_ID KpbHBMUTXjWqFP7Spag1a/0Z+CU 2026-11-22 1795337335
[GNUPG:] KEY_CONSIDERED {R} 0
[GNUPG:] REVKEYSIG AADC97C762A50D29 R <r@x>
gpg: Good signature from "R <r@x>" [unknown]
[GNUPG:] VALIDSIG {R} 2026-11-22 1795337335 0 4 0 22 8 00 {R}
[GNUPG:] KEY_CONSIDERED {R} 0
[GNUPG:] KEYREVOKED
gpg: WARNING: This key has been revoked by its owner!
[GNUPG:] TRUST_UNDEFINED 0 pgp
"""

NO_PUBKEY = f"""\
gpg: keybox '/tmp/gx/e/pubring.kbx' created
[GNUPG:] NEWSIG
gpg: Signature made Sun Nov 22 08:48:34 2026 UTC
[GNUPG:] ERRSIG BEFEDA4ECF8E3502 22 8 00 1795337314 9 {A}
[GNUPG:] NO_PUBKEY BEFEDA4ECF8E3502
gpg: Can't check signature: No public key
"""

BAD_ARMOR = """\
gpg: invalid radix64 character 2D skipped
gpg: [don't know]: invalid packet (ctb=00)
[GNUPG:] NODATA 3
[GNUPG:] NODATA 4
gpg: no signature found
gpg: no valid OpenPGP data found.
[GNUPG:] NODATA 1
gpg: the signature could not be verified.
"""

PINNED = frozenset({A, C, E, R})


# --- the parser ----------------------------------------------------------------------------


def test_one_good_signature() -> None:
    report = parse_status(GOOD)
    assert len(report.signatures) == 1
    sig = report.signatures[0]
    assert sig.state is SigState.GOOD
    assert sig.key_id == "BEFEDA4ECF8E3502"
    valid = sig.validsig
    assert valid is not None
    assert valid.fingerprint == A
    assert valid.primary_fingerprint == A
    assert valid.timestamp == 1795337314
    assert valid.expires == 0
    assert (valid.version, valid.pubkey_algo, valid.hash_algo, valid.sig_class) == (4, 22, 8, "00")
    assert (sig.key_expired, sig.key_revoked, sig.no_pubkey) == (False, False, False)
    assert (report.no_data, report.failures, report.malformed, report.outside) == (
        False,
        (),
        (),
        (),
    )


def test_subkey_signature_names_both_fingerprints() -> None:
    valid = parse_status(SUBKEY).signatures[0].validsig
    assert valid is not None
    assert (valid.fingerprint, valid.primary_fingerprint) == (C_SUB, C)


def test_two_signatures() -> None:
    report = parse_status(TWO)
    assert [sig.state for sig in report.signatures] == [SigState.GOOD, SigState.GOOD]
    assert report.result_count == 2


def test_bad_signature() -> None:
    report = parse_status(BAD)
    sig = report.signatures[0]
    assert sig.state is SigState.BAD
    assert sig.validsig is None
    assert report.failures == ("FAILURE gpg-exit 33554433",)


def test_expired_key() -> None:
    sig = parse_status(EXPIRED_KEY).signatures[0]
    assert sig.state is SigState.EXPIRED_KEY
    assert sig.key_expired
    assert sig.validsig is not None


def test_revoked_key() -> None:
    sig = parse_status(REVOKED_KEY).signatures[0]
    assert sig.state is SigState.REVOKED_KEY
    assert sig.key_revoked


def test_no_public_key() -> None:
    sig = parse_status(NO_PUBKEY).signatures[0]
    assert sig.state is SigState.ERROR
    assert sig.no_pubkey
    assert sig.error_code == 9
    assert sig.error_fingerprint == A


def test_no_data() -> None:
    report = parse_status(BAD_ARMOR)
    assert report.signatures == ()
    assert report.no_data


def test_human_text_is_never_read() -> None:
    text = (
        f"gpg: [GNUPG:] GOODSIG BEFEDA4ECF8E3502 x\n"
        f" [GNUPG:] VALIDSIG {A} 2026-11-22 1 0 4 0 22 8 00 {A}\n"
        "[GNUPG:]GOODSIG glued\n"
    )
    assert status_lines(text) == []
    assert parse_status(text).signatures == ()


def test_lines_before_any_newsig_are_kept_apart() -> None:
    report = parse_status("[GNUPG:] GOODSIG BEFEDA4ECF8E3502 x\n" + GOOD)
    assert report.outside == ("GOODSIG BEFEDA4ECF8E3502 x",)


@pytest.mark.parametrize(
    "line",
    [
        f"[GNUPG:] VALIDSIG {A} 2026-11-22 1795337314 0 4 0 22 8 00",  # no primary fingerprint
        f"[GNUPG:] VALIDSIG {A} 2026-11-22 soon 0 4 0 22 8 00 {A}",
        f"[GNUPG:] VALIDSIG {A[:16]} 2026-11-22 1795337314 0 4 0 22 8 00 {A}",
        "[GNUPG:] ERRSIG BEFEDA4ECF8E3502 22",
        "[GNUPG:] GOODSIG",
    ],
)
def test_malformed_lines_are_reported(line: str) -> None:
    report = parse_status("[GNUPG:] NEWSIG\n" + line + "\n")
    assert report.malformed


def test_times() -> None:
    assert parse_time("1795337314") == 1795337314
    assert parse_time("20261122T084834") == 1795337314
    assert parse_time("2026-11-22") is None
    assert parse_validsig([A, "x", "1", "0", "4", "0", "22", "8", "00"]) is None


# --- the signature check on these texts ----------------------------------------------------


def refused(text: str, pinned: frozenset[str] = PINNED) -> str:
    with pytest.raises(Refused) as caught:
        check_signature(parse_status(text), pinned)
    assert "\n" not in caught.value.reason
    return caught.value.reason


def test_check_accepts_one_good_pinned_signature() -> None:
    assert check_signature(parse_status(GOOD), PINNED).primary_fingerprint == A


def test_check_accepts_a_subkey_of_a_pinned_primary() -> None:
    assert check_signature(parse_status(SUBKEY), PINNED).fingerprint == C_SUB


def test_check_pins_the_primary_not_the_subkey() -> None:
    assert refused(SUBKEY, frozenset({C_SUB})) == (
        f"signed by subkey {C_SUB} of key {C}, which is not a trusted approver on this machine"
    )


def test_check_refusals() -> None:
    assert refused(GOOD, frozenset({B})) == (
        f"signed by key {A}, which is not a trusted approver on this machine"
    )
    assert refused(TWO) == "the document carries 2 signatures; exactly one is required"
    assert (
        refused(BAD) == "the signature does not match the document (it was changed after signing)"
    )
    assert refused(EXPIRED_KEY) == f"the approver's key {E} has expired"
    assert refused(REVOKED_KEY) == f"the approver's key {R} has been revoked"
    assert refused(NO_PUBKEY) == (
        f"signed by key {A}, which is not a trusted approver on this machine"
    )
    assert refused(BAD_ARMOR) == "no signature could be read (malformed armor, or not a signature)"
    assert refused("") == "no signature could be read (malformed armor, or not a signature)"


def test_check_refuses_a_second_verdict_without_a_second_newsig() -> None:
    text = GOOD + "[GNUPG:] GOODSIG 0000000000000000 someone else\n"
    assert refused(text) == "the document carries 2 signatures; exactly one is required"


def test_check_refuses_keyrevoked_or_keyexpired_even_beside_goodsig() -> None:
    assert "has been revoked" in refused(
        GOOD.replace("[GNUPG:] TRUST", "[GNUPG:] KEYREVOKED\n[GNUPG:] TRUST")
    )
    assert "has expired" in refused(
        GOOD.replace("[GNUPG:] TRUST", "[GNUPG:] KEYEXPIRED 1\n[GNUPG:] TRUST")
    )


def test_check_refuses_expired_signature_weak_hash_text_mode_and_errors() -> None:
    expsig = GOOD.replace("GOODSIG", "EXPSIG")
    assert refused(expsig) == "the signature has expired"
    sha1 = GOOD.replace(f"0 4 0 22 8 00 {A}", f"0 4 0 22 2 00 {A}")
    assert refused(sha1) == "the signature uses a weak hash (SHA-1)"
    text_mode = GOOD.replace(f"0 4 0 22 8 00 {A}", f"0 4 0 22 8 01 {A}")
    assert "not a binary document signature (class 01)" in refused(text_mode)
    failure = GOOD + "[GNUPG:] FAILURE verify 1\n"
    assert refused(failure) == "gpg reported a problem: FAILURE verify 1"
    errsig = NO_PUBKEY.replace(" 9 ", " 4 ").replace("[GNUPG:] NO_PUBKEY BEFEDA4ECF8E3502\n", "")
    assert refused(errsig) == "the signature could not be checked (gpg error 4)"
    no_validsig = "\n".join(line for line in GOOD.splitlines() if "VALIDSIG" not in line)
    assert refused(no_validsig) == "gpg did not report a valid signature"
    bad_line = GOOD.replace(f"0 4 0 22 8 00 {A}", "0 4 0 22 8 00")
    assert refused(bad_line).startswith("gpg's status output could not be read")
    stray = "[GNUPG:] VALIDSIG x\n" + GOOD
    assert refused(stray) == "gpg's status output reported a signature result outside a signature"

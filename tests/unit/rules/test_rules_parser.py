"""parse_rules: the rules format, every error path and the line each error names."""

from __future__ import annotations

from textwrap import dedent

import pytest

from rules import Drive, Policy, RulesError, parse_rules

SOURCE = "rules.toml"
ONLY_TABLES = "a rules file has only [policy], [[drive]], [[cloud]] and [[provider]]"


def _text(block: str) -> str:
    return dedent(block).lstrip("\n")


def _problems(text: str) -> list[tuple[int, str]]:
    with pytest.raises(RulesError) as caught:
        parse_rules(_text(text), SOURCE)
    assert all(problem.source == SOURCE for problem in caught.value.problems)
    return [(problem.line, problem.message) for problem in caught.value.problems]


def _one_problem(text: str) -> tuple[int, str]:
    problems = _problems(text)
    assert len(problems) == 1, problems
    return problems[0]


def _drives(text: str) -> tuple[Drive, ...]:
    return parse_rules(_text(text), SOURCE).drives


# --- valid files ---------------------------------------------------------------------------


def test_minimal_drive_gets_defaults() -> None:
    rules = parse_rules(
        _text("""
            [[drive]]
            serial = "SCHOOL-000123"
            vendor_id = "0781"
            product_id = "5581"
        """),
        SOURCE,
    )
    assert rules.policy == Policy()
    assert rules.sources == (SOURCE,)
    assert rules.drives == (
        Drive(
            rule_id="drive:0781:5581:SCHOOL-000123",
            serial="SCHOOL-000123",
            vendor_id="0781",
            product_id="5581",
            label="SCHOOL-000123",
            volume_uuids=frozenset(),
            source=SOURCE,
            line=1,
        ),
    )


def test_full_file() -> None:
    rules = parse_rules(
        _text("""
            # School rules
            [policy]
            require_encryption = false
            encrypted_types = ["crypto_LUKS"]
            allow_non_storage = false

            [[drive]]
            serial = "SCHOOL-000123"
            vendor_id = "ABCD"
            product_id = "00eF"
            label = "Office stick 12"
            volume_uuids = ["C0FFEE00-1111-2222-3333-444455556666", "ab12-cd34"]
            id = "office-12"
        """),
        SOURCE,
    )
    assert rules.policy == Policy(
        require_encryption=False,
        encrypted_types=frozenset({"crypto_LUKS"}),
        allow_non_storage=False,
    )
    (drive,) = rules.drives
    assert (drive.rule_id, drive.vendor_id, drive.product_id) == ("office-12", "abcd", "00ef")
    assert drive.label == "Office stick 12"
    assert drive.volume_uuids == {"c0ffee00-1111-2222-3333-444455556666", "ab12-cd34"}
    assert drive.line == 7


def test_empty_file_is_an_empty_rule_set() -> None:
    rules = parse_rules("", SOURCE)
    assert rules.drives == ()
    assert rules.policy == Policy()


def test_same_serial_under_different_makes_is_allowed() -> None:
    drives = _drives("""
        [[drive]]
        serial = "0123456789"
        vendor_id = "0781"
        product_id = "5581"
        [[drive]]
        serial = "0123456789"
        vendor_id = "0781"
        product_id = "5582"
        [[drive]]
        serial = "0123456789"
        vendor_id = "090c"
        product_id = "5581"
    """)
    assert [(d.vendor_id, d.product_id, d.line) for d in drives] == [
        ("0781", "5581", 1),
        ("0781", "5582", 5),
        ("090c", "5581", 9),
    ]


def test_byte_order_mark_is_accepted() -> None:
    drives = _drives('\ufeff[[drive]]\nserial = "S"\nvendor_id = "0781"\nproduct_id = "5581"\n')
    assert drives[0].serial == "S"


def test_crlf_line_endings() -> None:
    text = '[[drive]]\r\nserial = "S"\r\nvendor_id = "0781"\r\nproduct_id = 1\r\n'
    with pytest.raises(RulesError) as caught:
        parse_rules(text, SOURCE)
    assert caught.value.problems[0].line == 4


def test_inline_array_of_drives() -> None:
    drives = _drives("""
        drive = [
          { serial = "A", vendor_id = "0781", product_id = "5581" },
          { serial = "B", vendor_id = "0781", product_id = "5581" },
        ]
    """)
    assert [d.serial for d in drives] == ["A", "B"]


def test_serial_may_be_unicode_and_126_characters() -> None:
    serial = "Ä" * 126
    drives = _drives(f"""
        [[drive]]
        serial = "{serial}"
        vendor_id = "0781"
        product_id = "5581"
    """)
    assert drives[0].serial == serial


# --- syntax errors ---------------------------------------------------------------------------


def test_syntax_error_names_line_and_column() -> None:
    line, message = _one_problem("""
        [[drive]]
        serial = "S"
        vendor_id = 0781x
    """)
    assert line == 3
    assert message.startswith("not valid TOML: ")
    assert "(column" in message


def test_syntax_error_at_end_of_file() -> None:
    line, message = _one_problem('[[drive]]\nserial = "S\n')
    assert line == 2
    assert message.startswith("not valid TOML")


def test_unterminated_array_at_end_of_document() -> None:
    line, message = _one_problem("a = [\n1,\n2,")
    assert line == 3
    assert "end of the file" in message


def test_deep_nesting_is_a_problem_not_a_crash() -> None:
    line, message = _one_problem("a = " + "[" * 100_000)
    assert line == 0
    assert "nested too deeply" in message


def test_table_declared_twice_is_a_syntax_error() -> None:
    line, message = _one_problem("[policy]\n[policy]\n")
    assert line == 2
    assert "not valid TOML" in message


# --- structure ---------------------------------------------------------------------------


def test_unknown_table() -> None:
    assert _one_problem("""
        [[drive]]
        serial = "S"
        vendor_id = "0781"
        product_id = "5581"

        [printers]
        allow = true
    """) == (6, f"unknown table [printers]; {ONLY_TABLES}")


def test_unknown_array_of_tables_and_top_level_key() -> None:
    assert _problems("""
        allow_everything = true
        [[drives]]
        serial = "S"
    """) == [
        (1, f"unknown key 'allow_everything'; {ONLY_TABLES}"),
        (2, f"unknown table [drives]; {ONLY_TABLES}"),
    ]


def test_unknown_policy_key_suggests_the_right_one() -> None:
    assert _one_problem("""
        [policy]
        require_encryption = true
        alow_non_storage = false
    """) == (3, "unknown key 'alow_non_storage' in [policy]; did you mean 'allow_non_storage'?")


def test_unknown_drive_key() -> None:
    assert _one_problem("""
        [[drive]]
        serial = "S"
        vendor_id = "0781"
        product_id = "5581"
        colour = "red"
    """) == (5, "unknown key 'colour' in [[drive]]")


def test_unknown_subtable_of_a_drive_names_its_header() -> None:
    assert _one_problem("""
        [[drive]]
        serial = "S"
        vendor_id = "0781"
        product_id = "5581"
        [[drive]]
        serial = "T"
        vendor_id = "0781"
        product_id = "5581"
        [drive.extra]
        a = 1
    """) == (9, "unknown key 'extra' in [[drive]]")


@pytest.mark.parametrize("text", ["[[policy]]\nrequire_encryption = true\n", "policy = 1\n"])
def test_policy_must_be_one_table(text: str) -> None:
    assert _one_problem(text) == (1, "policy must be a single [policy] table")


@pytest.mark.parametrize(
    "text",
    [
        '# one drive\n[drive]\nserial = "S"\n',
        "# one drive\ndrive = 1\n",
        "# one drive\ndrive = [1, 2]\n",
    ],
)
def test_drives_must_be_an_array_of_tables(text: str) -> None:
    assert _one_problem(text) == (2, "drives must be listed as [[drive]] tables, one per drive")


def test_missing_required_keys_name_the_drive_header() -> None:
    assert _problems("""
        [[drive]]
        serial = "S"
        vendor_id = "0781"
        product_id = "5581"

        [[drive]]
        label = "no ids at all"
    """) == [
        (6, "drive is missing required key 'serial'"),
        (6, "drive is missing required key 'vendor_id'"),
        (6, "drive is missing required key 'product_id'"),
    ]


def test_missing_key_in_inline_drive_names_the_array_line() -> None:
    assert _one_problem("""
        # drives
        drive = [{ serial = "A", vendor_id = "0781" }]
    """) == (2, "drive is missing required key 'product_id'")


# --- values ---------------------------------------------------------------------------


_DRIVE_HEAD = '[[drive]]\nserial = "S"\nvendor_id = "0781"\nproduct_id = "5581"\n'


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("label = true", "label must be a string, not boolean"),
        ("label = 12", "label must be a string, not integer"),
        ("label = 1.5", "label must be a string, not float"),
        ("label = 2024-01-01", "label must be a string, not date or time"),
        ("label = {a = 1}", "label must be a string, not table"),
        ("label = []", "label must be a string, not array"),
        ('label = ""', "label must not be empty"),
        (f'label = "{"L" * 81}"', "label is 81 characters long; at most 80 are allowed"),
        ('label = "tab\\there"', "label contains a control or non-printable character (U+0009)"),
        ('id = "Office 12"', "id must be 1 to 64 characters from a-z, 0-9, '.', '_' and '-'"),
        (f'id = "{"a" * 65}"', "id must be 1 to 64"),
        ("id = 12", "id must be a string, not integer"),
        (
            'volume_uuids = "c0ffee"',
            "volume_uuids must be a non-empty array of strings, not string",
        ),
        ("volume_uuids = []", "volume_uuids must be a non-empty array of strings, not an empty"),
        ('volume_uuids = ["ab", 1]', "volume_uuids must be an array of strings, but it holds an"),
        (
            'volume_uuids = ["zz-top"]',
            "volume_uuids entries must be UUIDs of hex digits and dashes",
        ),
        (f'volume_uuids = ["{"a" * 65}"]', "volume_uuids entries must be UUIDs"),
    ],
)
def test_bad_optional_drive_values_name_their_line(line: str, expected: str) -> None:
    problem_line, message = _one_problem(_DRIVE_HEAD + line + "\n")
    assert problem_line == 5
    assert expected in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("123", "serial must be a string, not integer"),
        ('""', "serial must not be empty"),
        (f'"{"S" * 127}"', "serial is 127 characters long; at most 126 are allowed"),
        ('"SCHOOL\\u0007"', "serial contains a control or non-printable character (U+0007)"),
        ('"SCHOOL\\n1"', "U+000A"),
        ('"\\u00a0"', "U+00A0"),
    ],
)
def test_bad_serials(value: str, expected: str) -> None:
    text = f'# school drive\n[[drive]]\nvendor_id = "0781"\nserial = {value}\nproduct_id = "5581"\n'
    line, message = _one_problem(text)
    assert line == 4
    assert expected in message


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ('"781"', "vendor_id must be exactly 4 hex digits, like \"0781\" (got '781')"),
        ('"07811"', "(got '07811')"),
        ('"g781"', "(got 'g781')"),
        ('"٠٧٨١"', "exactly 4 hex digits"),  # Arabic-Indic digits are not hex digits
        ("0x0781", "vendor_id must be a string, not integer"),
    ],
)
def test_bad_vendor_ids(value: str, expected: str) -> None:
    line, message = _one_problem(
        f'[[drive]]\nserial = "S"\nproduct_id = "5581"\nvendor_id = {value}\n'
    )
    assert line == 4
    assert expected in message


def test_bad_product_id() -> None:
    assert _one_problem(_DRIVE_HEAD.replace('"5581"', '"55 81"'))[1].startswith(
        "product_id must be exactly 4 hex digits"
    )


def test_values_are_escaped_in_messages() -> None:
    _, message = _one_problem(_DRIVE_HEAD.replace('"0781"', '"\\u001b[31m"'))
    assert "\x1b" not in message
    assert "\\x1b[31m" in message


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ('require_encryption = "yes"', "require_encryption must be true or false, not string"),
        ("allow_non_storage = 0", "allow_non_storage must be true or false, not integer"),
        ('encrypted_types = "crypto_LUKS"', "encrypted_types must be a non-empty array"),
        ("encrypted_types = []", "encrypted_types must be a non-empty array of strings"),
        ('encrypted_types = ["crypto LUKS"]', "encrypted_types entries must be filesystem type"),
        ("encrypted_types = [true]", "but it holds a boolean"),
    ],
)
def test_bad_policy_values(line: str, expected: str) -> None:
    problem_line, message = _one_problem(f"# policy\n[policy]\n{line}\n")
    assert problem_line == 3
    assert expected in message


def test_policy_as_dotted_keys_is_located() -> None:
    assert _one_problem("# root\npolicy.require_encryption = 1\n") == (
        2,
        "require_encryption must be true or false, not integer",
    )


# --- duplicates ---------------------------------------------------------------------------


def test_duplicate_drive_names_both_lines() -> None:
    assert _one_problem("""
        [[drive]]
        serial = "SCHOOL-1"
        vendor_id = "0781"
        product_id = "5581"

        [[drive]]
        serial = "SCHOOL-1"
        vendor_id = "0781"
        product_id = "5581"
        label = "again"
    """) == (
        6,
        "duplicate drive: serial 'SCHOOL-1' with vendor_id 0781 and product_id 5581 "
        "is already enrolled at line 1",
    )


def test_duplicate_drive_compares_usb_ids_case_insensitively() -> None:
    lower = _DRIVE_HEAD.replace("5581", "abcd")
    upper = _DRIVE_HEAD.replace("5581", "ABCD")
    line, message = _one_problem(lower + upper)
    assert line == 5
    assert message.startswith("duplicate drive")


def test_duplicate_rule_id_names_both_lines() -> None:
    assert _one_problem("""
        [[drive]]
        id = "office"
        serial = "A"
        vendor_id = "0781"
        product_id = "5581"
        [[drive]]
        id = "office"
        serial = "B"
        vendor_id = "0781"
        product_id = "5581"
    """) == (6, "duplicate rule id 'office': already used at line 1")


# --- all problems, in order ----------------------------------------------------------------


def test_every_problem_is_reported_in_line_order() -> None:
    problems = _problems("""
        [[drive]]
        serial = "A"
        vendor_id = "xyz"
        product_id = "5581"

        [policy]
        require_encryption = "no"
        surprise = 1

        [[drive]]
        serial = 5
        vendor_id = "0781"

        [[drive]]
        serial = "C"
        vendor_id = "0781"
        product_id = "5581"
        [[drive]]
        serial = "C"
        vendor_id = "0781"
        product_id = "5581"
    """)
    assert [line for line, _ in problems] == [3, 7, 8, 10, 11, 18]
    assert "missing required key 'product_id'" in problems[3][1]


# --- the line locator on awkward but valid TOML ----------------------------------------------


def test_locator_ignores_headers_and_keys_inside_multiline_strings() -> None:
    assert _problems('''
        [[drive]]
        serial = "A"
        vendor_id = "0781"
        product_id = "5581"
        label = """
        [[drive]]
        product_id = 1
        a \\""" still inside ""\\"
        """
        [[drive]]
        serial = "B"
        vendor_id = "0781"
        product_id = 2
    ''') == [
        (5, "label contains a control or non-printable character (U+000A)"),
        (13, "product_id must be a string, not integer"),
    ]


def test_locator_handles_literal_and_quote_heavy_strings() -> None:
    problems = _problems("""
        [[drive]]
        serial = 'it has # and [brackets]'
        label = "quote \\" [[drive]] # still a string"
        vendor_id = '''
        [[drive]]'''
        product_id = \"\"\"x\"\"\"\"\"
        [[drive]]
        serial = "B"
        vendor_id = "0781"
        "product_id" = 3
    """)
    assert problems == [
        (4, "vendor_id must be exactly 4 hex digits, like \"0781\" (got '[[drive]]')"),
        (6, 'product_id must be exactly 4 hex digits, like "0781" (got \'x""\')'),
        (10, "product_id must be a string, not integer"),
    ]


def test_locator_skips_multiline_arrays_and_comments() -> None:
    assert _one_problem("""
        [policy]
        encrypted_types = [
          # [[drive]] in a comment
          "crypto_LUKS",
          "BitLocker", # trailing ] comment
        ]
        [ "policy" . extra ]
        x = 1
    """) == (7, "unknown key 'extra' in [policy]")


def test_locator_handles_indented_headers_and_quoted_keys() -> None:
    assert _one_problem("""
        # drives
          [[ "drive" ]]   # first
          serial = "A"
          vendor_id = "0781"
          'product_id' = "5581"
          [[drive]]
          "serial" = "B"
          vendor_id = "0781"
          "product\\u005fid" = "nope"
    """) == (9, "product_id must be exactly 4 hex digits, like \"0781\" (got 'nope')")

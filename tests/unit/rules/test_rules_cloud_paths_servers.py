"""Paths named by configs stay inside the home; server URLs compare as people mean them."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from rules import normal_server
from rules.cloud.paths import inside_home

HOME = "/home/alice"


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("/home/alice/Dropbox", f"{HOME}/Dropbox"),
        ("/home/alice/Dropbox/", f"{HOME}/Dropbox"),
        ("/home/alice/./a//b/../Dropbox", f"{HOME}/a/Dropbox"),
        ("~/Dropbox", f"{HOME}/Dropbox"),
        ("Work/OneDrive", f"{HOME}/Work/OneDrive"),
        ("/home/alice/\u00e9t\u00e9 \n", f"{HOME}/\u00e9t\u00e9 \n"),
        ("~", None),
        ("~/", None),
        ("/home/alice", None),
        ("/home/alice/..", None),
        ("~/../bob", None),
        ("..", None),
        ("~bob/Dropbox", None),
        ("/home/alicex/Dropbox", None),
        ("/etc/passwd", None),
        ("//home/alice/x", None),
        ("/home/alice/\x00x", None),
        ("", None),
        ("/home/alice/" + "a" * 5000, None),
    ],
)
def test_inside_home(raw: str, expected: str | None) -> None:
    assert inside_home(raw, HOME) == expected


def test_a_home_given_with_a_trailing_slash_or_not_absolute() -> None:
    assert inside_home("~/x", HOME + "/") == f"{HOME}/x"
    assert inside_home("~/x", "home/alice") is None


@given(st.text(max_size=80))
def test_inside_home_never_leaves_it(raw: str) -> None:
    path = inside_home(raw, HOME)
    if path is not None:
        assert path.startswith(HOME + "/")
        assert ".." not in path.split("/")


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("https://cloud.school.example", "https://cloud.school.example"),
        ("HTTPS://Cloud.School.Example:443/", "https://cloud.school.example"),
        ("http://cloud.school.example:80", "http://cloud.school.example"),
        ("https://cloud.school.example:8443/NC//", "https://cloud.school.example:8443/NC"),
        ("https://alice:pw@cloud.school.example/?x=1#y", "https://cloud.school.example"),
        ("https://[2001:DB8::1]:443/", "https://[2001:db8::1]"),
        ("cloud.school.example", None),
        ("ftp://cloud.school.example", None),
        ("https://", None),
        ("https://cloud.school.example:99999", None),
        ("https://[::1", None),
        ("https://cloud school.example", None),
        ("https://cloud.school.example/\x1b[2J", None),
        ("", None),
    ],
)
def test_normal_server(raw: str, expected: str | None) -> None:
    assert normal_server(raw) == expected


@given(st.text(max_size=60))
def test_normal_server_never_raises_and_is_stable(raw: str) -> None:
    server = normal_server(raw)
    if server is not None:
        assert normal_server(server) == server

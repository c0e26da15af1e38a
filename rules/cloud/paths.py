"""Turn a path a config names into an absolute path inside the home, or reject it.

Configs are the user's: a path may be relative, start with "~", climb out with "..", or point
anywhere. Only paths strictly inside the home are kept, never the home itself (blocking a
whole home would lock its owner out).
"""

from __future__ import annotations

import posixpath

MAX_PATH_LEN = 4096  # PATH_MAX on Linux


def normal_home(home: str) -> str | None:
    """The home as an absolute, normalised path, or None when it cannot be one."""
    if not home.startswith("/") or "\x00" in home or len(home) > MAX_PATH_LEN:
        return None
    return posixpath.normpath(home)


def is_inside(path: str, home: str) -> bool:
    """True when the normalised absolute `path` is strictly inside the normalised `home`."""
    if home == "/":
        return path != "/"
    return path.startswith(home + "/")


def inside_home(raw: str, home: str) -> str | None:
    """`raw` as an absolute normalised path strictly inside `home`, or None.

    "~" and "~/..." mean the home; other relative paths are taken relative to the home;
    "~user" forms and anything that ends up outside the home are refused.
    """
    root = normal_home(home)
    if root is None or not raw or "\x00" in raw or len(raw) > MAX_PATH_LEN:
        return None
    if raw == "~" or raw.startswith("~/"):
        raw = root + raw[1:]
    elif raw.startswith("~"):
        return None
    elif not raw.startswith("/"):
        raw = root + "/" + raw
    # normpath keeps a leading "//" (POSIX says it may mean something else): refuse it.
    path = posixpath.normpath(raw)
    if path.startswith("//") or not is_inside(path, root):
        return None
    return path


def home_relative(relative: str, home: str) -> str | None:
    """The absolute path of a home-relative path from the signatures, or None."""
    return inside_home(relative, home)

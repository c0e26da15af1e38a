"""Server URLs compared the way people mean them.

"https://Cloud.School.example:443/" and "https://cloud.school.example" are the same server:
the scheme and host are lowercased, a default port is dropped, and so are trailing slashes,
the query and the fragment. The path keeps its case (servers may care).
"""

from __future__ import annotations

from urllib.parse import urlsplit

MAX_URL_LEN = 2048
_DEFAULT_PORTS = {"https": 443, "http": 80}


def normal_server(raw: str) -> str | None:
    """The normalised form of an http(s) server URL, or None when it is not one."""
    if not raw or len(raw) > MAX_URL_LEN:
        return None
    if any(char.isspace() or not char.isprintable() for char in raw):
        return None
    try:
        parts = urlsplit(raw)
        port = parts.port
    except ValueError:  # a bad port or a malformed IPv6 address
        return None
    scheme = parts.scheme.lower()
    host = parts.hostname
    if scheme not in _DEFAULT_PORTS or not host:
        return None
    if ":" in host:
        host = f"[{host}]"
    netloc = host if port in (None, _DEFAULT_PORTS[scheme]) else f"{host}:{port}"
    return f"{scheme}://{netloc}{parts.path.rstrip('/')}"


def server_problem(value: str) -> str | None:
    """Check a server URL in a rules file."""
    if normal_server(value) is not None:
        return None
    shown = value if len(value) <= 60 and value.isprintable() else repr(value[:60])
    return (
        'server must be a web address like "https://cloud.school.example" '
        f"(http or https, with a host name; got {shown!r})"
    )

"""URLs that go into certificates (CRL distribution points, OCSP responders): checked once, where they enter.

A URL written into a certificate stays there until the certificate expires, and every peer that checks
revocation fetches it: Expressway and CUCM fetch CRLs over plain HTTP(S). So a URL is refused at ``init`` or
``ca set-url`` unless every validator can use it: an http(s) scheme, a host name in IDNA A-label form (a
non-ASCII name is converted; cryptography refuses to encode one later), no user name or password (they would be
published in every certificate), a valid port, a plain ASCII path without dot segments, query or fragment, no
control or bidirectional-override characters, and a bounded length.
"""

from __future__ import annotations

import ipaddress
import unicodedata
from urllib.parse import unquote, urlsplit

# A CRL URL is some 40 characters; 512 leaves room for any real path and keeps certificates small.
MAX_URL_LENGTH = 512


def url_problem(url: str) -> str | None:
    """Why ``url`` cannot go into a certificate, or None."""
    return _checked(url)[1]


def normalized_url(url: str) -> str:
    """``url`` as it goes into certificates: scheme and host in lower case, the host as IDNA A-labels.

    Raises ValueError with the reason when :func:`url_problem` has one.
    """
    normal, problem = _checked(url)
    if problem is not None:
        raise ValueError(problem)
    assert normal is not None
    return normal


def _checked(url: str) -> tuple[str | None, str | None]:
    if len(url) > MAX_URL_LENGTH:
        return None, f"is {len(url)} characters long; privca accepts URLs of up to {MAX_URL_LENGTH}"
    if any(unicodedata.category(ch) in ("Cc", "Cf", "Zl", "Zp") or ch.isspace() for ch in url):
        return None, "contains spaces, control or bidirectional-override characters"
    try:
        parts = urlsplit(url)
        port = parts.port
        host = parts.hostname
    except ValueError:
        return None, "has an invalid host or port (ports run from 1 to 65535)"
    if parts.scheme.lower() not in ("http", "https") or not host:
        return None, "must be an http:// or https:// URL with a host name and no spaces"
    if "@" in parts.netloc:
        return None, "must not hold a user name or password (it would be published in every certificate)"
    if port == 0:
        return None, "has an invalid host or port (ports run from 1 to 65535)"
    if parts.query or parts.fragment or "?" in url or "#" in url:
        return None, "must not have a query (?) or fragment (#)"
    if not parts.path.isascii():
        return None, "has non-ASCII characters in its path; percent-encode them (%xx)"
    if any(segment in (".", "..") for segment in unquote(parts.path).split("/")):
        return None, "must not contain . or .. path segments"
    host_text, problem = _host(host, parts.netloc)
    if problem is not None:
        return None, problem
    netloc = host_text + (f":{port}" if port is not None else "")
    return f"{parts.scheme.lower()}://{netloc}{parts.path}", None


def _host(host: str, netloc: str) -> tuple[str, str | None]:
    """The host as it goes into the URL (A-labels, IPv6 in brackets), or why it cannot."""
    from privca.common.names import dns_name_problem

    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        address = None
    if address is not None:
        return (f"[{address.compressed}]" if address.version == 6 else str(address)), None
    if netloc.startswith("["):
        return "", "has an invalid IPv6 address in brackets"
    try:
        # Python's codec implements IDNA 2003 per label; the A-labels it makes are checked like any SAN below.
        ascii_host = host.encode("idna").decode("ascii").lower() if not host.isascii() else host.lower()
    except UnicodeError:
        return "", "has a host name that cannot be converted to IDNA A-labels (xn--)"
    if "." not in ascii_host:
        return "", "needs a fully qualified host name (peers elsewhere in the estate resolve it)"
    problem = dns_name_problem(ascii_host)
    if problem is not None:
        return "", f"host {ascii_host}: {problem}"
    return ascii_host, None

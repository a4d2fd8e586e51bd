"""Cisco's decision tree for the clientAuth sunset, refined by the Expressway version.

Cisco's remedies (FN74362; TAC 225482 and 225693), in the order an administrator considers them:
1. renew early, while the public CA still issues serverAuth+clientAuth;
2. an alternate (non-browser) root from a public CA that still issues combined EKU;
3. a private CA issuing serverAuth+clientAuth for Expressway-C (FN74362 option 3; Expressway-E usually needs a
   browser-trusted certificate);
4. upgrade: X15.4 lets Expressway-E take a serverAuth-only certificate
   (``xConfiguration XCP TLS Certificate CVS EnableServerEkuUpload: On``); X15.5 has separate server and client
   certificate stores, and the client certificate must carry clientAuth.
Up to X15.3, Expressway refuses a server certificate without clientAuth while UC features are on.
"""

from __future__ import annotations

import re

from privca.errors import UsageError

LEGACY = "x14-x15.3"
X15_4 = "x15.4"
X15_5 = "x15.5"
VERSION_HELP = "X14, X15.0 to X15.3, X15.4 or X15.5 (later versions behave like X15.5)"

_VERSION = re.compile(r"^[xX]?(\d+)(?:\.(\d+))?(?:\.\d+)*$")


def parse_expressway_version(text: str | None) -> str | None:
    """``X14.3.7`` -> ``x14-x15.3``; ``X15.4`` -> ``x15.4``; ``X15.5`` or later -> ``x15.5``."""
    if text is None:
        return None
    match = _VERSION.match(text.strip())
    if not match:
        raise UsageError(f"--expressway-version {text!r}: not a version; give {VERSION_HELP}")
    major, minor = int(match[1]), int(match[2] or 0)
    if major < 14:
        raise UsageError(f"--expressway-version {text!r}: privca knows X14 and later; give {VERSION_HELP}")
    if major == 14 or (major == 15 and minor <= 3):
        return LEGACY
    if major == 15 and minor == 4:
        return X15_4
    return X15_5


def version_text(version: str | None) -> str:
    return {None: "not given", LEGACY: "X14 to X15.3", X15_4: "X15.4", X15_5: "X15.5 or later"}[version]


_PRIVATE_CA = "issue Expressway-C's certificate from a private CA with serverAuth+clientAuth (privca issue --profile expressway-c)"
_ALTERNATE_ROOT = "or use a public CA's alternate (non-browser) root that still issues combined EKU"
_UPGRADE = ("or upgrade both Expressways to X15.5 and use separate certificates: a public serverAuth-only one in the "
            "Server store and a private-CA clientAuth one in the Client store (privca issue --profile expressway-client)")


def after_public_client_auth(version: str | None) -> str:
    """What to do once a public certificate can no longer be renewed with clientAuth."""
    if version == X15_5:
        return ("On X15.5, put the serverAuth-only renewal in the Server store and a private-CA clientAuth certificate "
                "in the Client store (privca issue --profile expressway-client); C-to-E tunnels (TCP 2222) need it.")
    if version == X15_4:
        return ("On X15.4, Expressway-E takes the serverAuth-only renewal with xConfiguration XCP TLS Certificate CVS "
                f"EnableServerEkuUpload: On; Expressway-C still needs both EKUs: {_PRIVATE_CA}, {_UPGRADE}.")
    if version == LEGACY:
        return ("Expressway X14 to X15.3 refuses a serverAuth-only certificate while UC features are on: before it "
                f"expires, {_PRIVATE_CA}, {_ALTERNATE_ROOT}, {_UPGRADE}.")
    return (f"Before it expires, {_PRIVATE_CA}, {_ALTERNATE_ROOT}; or upgrade Expressway to X15.4 (Expressway-E takes "
            "serverAuth-only) or X15.5 (separate server and client certificates). Give --expressway-version for a "
            "precise answer.")


def split_at_renewal() -> str:
    """X15.5, a public certificate with clientAuth: it works until it expires; its renewal is split in two."""
    return "No early renewal needed on X15.5: " + after_public_client_auth(X15_5)


def renew_early(deadline: str, keeps_until: str, version: str | None) -> str:
    if version == X15_5:
        return ("No early renewal needed on X15.5: " + after_public_client_auth(version))
    return (f"Renew early, before {deadline}, to keep clientAuth until about {keeps_until}. That only buys time: "
            + after_public_client_auth(version))


def server_only(version: str | None, *, public: bool) -> tuple[str, str]:
    """(severity, remedy) for a certificate without clientAuth, which cannot be a TLS client certificate."""
    combined = ("reissue it from your private CA with serverAuth+clientAuth (privca issue --profile expressway-c)"
                if not public else _PRIVATE_CA)
    if version == X15_5:
        return "info", ("Fine in the X15.5 Server store; the Client store needs a clientAuth certificate "
                        "(privca issue --profile expressway-client).")
    if version == X15_4:
        return "warning", ("Fine on Expressway-E with xConfiguration XCP TLS Certificate CVS EnableServerEkuUpload: On; "
                           f"Expressway-C needs both EKUs: {combined}.")
    return "warning", ("It cannot be a TLS client certificate: Expressway up to X15.3 refuses it as server certificate "
                       "while UC features are on, and mTLS with CUCM, Unity Connection, CMS and CUBE fails. "
                       f"For Expressway-C, {combined}; or upgrade to X15.4 (Expressway-E) or X15.5 (split certificates).")


__all__ = ["LEGACY", "VERSION_HELP", "X15_4", "X15_5", "after_public_client_auth", "parse_expressway_version",
           "renew_early", "server_only", "split_at_renewal", "version_text"]

"""Chain rules: weak signatures, broken or missing links, issuers that are not CAs or restrict the EKU, CAs that
expire first; and the one way a chain file is assembled.

The rules take plain facts (labels, EKU names, dates) so that they serve the chain walker of ``inspect`` and the
ledger's own chains alike.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Literal

from privca.rules.catalogue import Breach, rule
from privca.rules.validity import day

WEAK_HASHES = ("sha1", "md5")
FileKind = Literal["cert", "chain", "fullchain"]


def weak_signature(hash_name: str | None, *, self_issued: bool, label: str) -> Breach | None:
    """A SHA-1 or MD5 signature. A root's self-signature is never checked (it is trusted by being in the store)."""
    if hash_name not in WEAK_HASHES or self_issued:
        return None
    return Breach(rule("signature.weak"), f"{label} is signed with {hash_name.upper()}: refused by current TLS "
                  "stacks and by the CA/B Baseline Requirements")


def bad_signature(issuer: str, label: str) -> Breach:
    return Breach(rule("chain.signature"), f"no certificate named {issuer} verifies the signature of {label}: wrong "
                  "or re-keyed issuing CA")


def incomplete(issuer: str) -> Breach:
    return Breach(rule("chain.incomplete"), f"chain incomplete: issuer {issuer} not among the certificates given; "
                  "the root and every intermediate must be in the product's trust store")


def not_a_ca(label: str) -> Breach:
    return Breach(rule("chain.not-ca"), f"{label} issues certificates but is not a CA (basicConstraints CA:TRUE "
                  "missing)")


def missing_eku(have: Iterable[str] | None, needed: Iterable[str]) -> list[str]:
    """The purposes in ``needed`` an EKU extension does not grant; no extension (None) grants every purpose."""
    if have is None:
        return []
    granted = set(have)
    return [name for name in needed if name not in granted]


def ca_restricts(ca_label: str, ca_eku: tuple[str, ...] | None, purposes: Iterable[str]) -> list[Breach]:
    """OpenSSL (and pyca's verifier) check the EKU of every CA on the path: a CA limited to serverAuth voids the
    clientAuth of every certificate under it."""
    return [Breach(rule("chain.eku"), f"CA {ca_label} restricts the certificates under it to "
                   f"{', '.join(ca_eku or ())}: {purpose} fails (OpenSSL: unsuitable certificate purpose)")
            for purpose in missing_eku(ca_eku, purposes)]


def ca_expiry(ca_label: str, ca_not_after: datetime, leaf_not_after: datetime, now: datetime) -> Breach | None:
    """The CA has expired, or expires before the certificate under it (the chain stops validating then)."""
    if ca_not_after < now:
        return Breach(rule("chain.expired"), f"CA {ca_label} expired on {day(ca_not_after)}")
    if leaf_not_after > ca_not_after:
        return Breach(rule("chain.outlives"), f"outlives CA {ca_label}: the chain stops validating on "
                      f"{day(ca_not_after)}, before this certificate's {day(leaf_not_after)}")
    return None


def order(problem: str | None, where: str = "") -> Breach | None:
    """``problem`` from ``inspect.chain.order_problem`` (which walks the certificates of one file)."""
    if problem is None:
        return None
    return Breach(rule("chain.order"), f"{where}: {problem}" if where else problem)


def chain_pem(ca_pems: Iterable[str]) -> str:
    """The ``.chain.pem`` file: the issuing CA, then each parent up to the root (RFC 8446 4.4.2 order). Each PEM
    block ends with a newline, so the file does too."""
    return "".join(ca_pems)


def file_content(kind: FileKind, leaf_pem: str, ca_pems: Iterable[str]) -> bytes:
    """What ``issue`` writes to each of its three files: ``cert`` (``<name>.pem``), ``chain`` and ``fullchain``
    (the certificate followed by its chain). ``verify`` and ``show`` compare and rewrite with the same bytes."""
    if kind == "cert":
        return leaf_pem.encode()
    chain = chain_pem(ca_pems)
    return (chain if kind == "chain" else leaf_pem + chain).encode()

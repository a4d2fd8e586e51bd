"""Is a root public? And what does the public-trust timeline mean for a certificate under it?

Two inputs, both versioned and shown in every report:
- Mozilla's root store as shipped by ``certifi`` (roots matched by SHA-256 of the certificate and of its
  SubjectPublicKeyInfo, so a re-issued or cross-signed copy of a root still matches), plus any extra stores the
  caller adds (``--public-roots``), each reported under its own label;
- ``privca/inspect/data/public_trust.toml``: the Chrome leaf-EKU date, the SC-081 validity table, each public CA's
  clientAuth cut-off and the roots browsers removed, every date with its source.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass
from datetime import date
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from cryptography import x509

from privca.inspect.certinfo import CertInfo, describe
from privca.errors import UsageError

DATA_FILE = "public_trust.toml"


@dataclass(frozen=True)
class CaCutoff:
    """A public CA's last clientAuth issuance: renewals from ``client_auth_ends`` on carry serverAuth only."""

    name: str
    organizations: tuple[str, ...]
    client_auth_ends: date
    note: str
    source: str


@dataclass(frozen=True)
class RemovedRoot:
    name: str
    sha256: str
    spki_sha256: str
    removed_from: tuple[str, ...]
    date: date
    applies_to: str  # "all" or "issued-after"
    source: str


@dataclass(frozen=True)
class TrustData:
    revision: str
    chrome_policy: str
    chrome_leaf_serverauth_only_from: date
    chrome_source: str
    max_validity: tuple[tuple[date, int, str], ...]  # (issued from, days, source), oldest first
    cas: tuple[CaCutoff, ...]
    removed_roots: tuple[RemovedRoot, ...]
    origin: str  # "shipped" or the path of the file

    def max_validity_days(self, issued: date) -> int:
        """The longest validity a public CA may give a certificate issued on ``issued`` (SC-081)."""
        days = self.max_validity[0][1]
        for start, limit, _ in self.max_validity:
            if issued >= start:
                days = limit
        return days

    def cutoff_for(self, organizations: list[str]) -> CaCutoff | None:
        """The CA whose organisation names appear in ``organizations`` (the O= of the chain's CAs)."""
        wanted = {name.casefold() for name in organizations}
        for ca in self.cas:
            if any(name.casefold() in wanted for name in ca.organizations):
                return ca
        return None

    def removed(self, info: CertInfo) -> RemovedRoot | None:
        for root in self.removed_roots:
            if info.sha256 == root.sha256 or (info.self_issued and info.spki_sha256 == root.spki_sha256):
                return root
        return None

    def summary(self) -> dict[str, Any]:
        return {"revision": self.revision, "origin": self.origin, "chrome_policy": self.chrome_policy}


def load_trust_data(path: Path | None = None) -> TrustData:
    """The shipped data file, or ``path`` (an edited copy). UsageError listing every problem in a bad file."""
    if path is None:
        text = resources.files("privca.inspect").joinpath("data", DATA_FILE).read_text(encoding="utf-8")
        return _parse(text, "shipped")
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UsageError(f"--trust-data {path}: cannot read ({getattr(exc, 'strerror', None) or exc})") from None
    return _parse(text, str(path))


@lru_cache(maxsize=1)
def shipped_trust_data() -> TrustData:
    return load_trust_data(None)


def _tables(data: dict[str, Any], key: str, problems: list[str]) -> list[dict[str, Any]]:
    """The array of tables ``key`` (``[[key]]`` in TOML); anything else there is a problem, not a crash."""
    value = data.get(key, [])
    if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
        problems.append(f"{key}: must be a list of tables ([[{key}]])")
        return []
    return value


def _parse(text: str, origin: str) -> TrustData:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise UsageError(f"trust data {origin}: not valid TOML ({exc})") from None
    problems: list[str] = []

    def get(table: dict[str, Any], key: str, kind: type, where: str) -> Any:
        value = table.get(key)
        if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
            problems.append(f"{where}{key}: missing or not {kind.__name__}")
            return None
        return value

    if data.get("schema") != 1:
        problems.append("schema: must be 1")
    revision = get(data, "revision", str, "")
    chrome: dict[str, Any] = data["chrome"] if isinstance(data.get("chrome"), dict) else {}
    chrome_date = get(chrome, "leaf_serverauth_only_from", date, "chrome.")
    chrome_policy = get(chrome, "policy", str, "chrome.")
    chrome_source = get(chrome, "source", str, "chrome.")
    validity = []
    for i, row in enumerate(_tables(data, "max_validity", problems)):
        where = f"max_validity[{i}]."
        validity.append((get(row, "issued_from", date, where), get(row, "days", int, where), get(row, "source", str, where)))
    if not validity:
        problems.append("max_validity: at least one entry is needed")
    cas = []
    for i, row in enumerate(_tables(data, "ca", problems)):
        where = f"ca[{i}]."
        organizations = get(row, "organizations", list, where) or []
        cas.append(CaCutoff(get(row, "name", str, where), tuple(str(o) for o in organizations),
                            get(row, "client_auth_ends", date, where), str(row.get("note", "")),
                            get(row, "source", str, where)))
    removed = []
    for i, row in enumerate(_tables(data, "removed_root", problems)):
        where = f"removed_root[{i}]."
        applies_to = get(row, "applies_to", str, where)
        if applies_to not in (None, "all", "issued-after"):
            problems.append(f"{where}applies_to: must be \"all\" or \"issued-after\"")
        removed.append(RemovedRoot(get(row, "name", str, where), str(get(row, "sha256", str, where)).lower(),
                                   str(row.get("spki_sha256", "")).lower(),
                                   tuple(get(row, "removed_from", list, where) or ()), get(row, "date", date, where),
                                   applies_to, get(row, "source", str, where)))
    if problems:
        raise UsageError(f"trust data {origin}: invalid", problems=problems)
    return TrustData(revision, chrome_policy, chrome_date, chrome_source,
                     tuple(sorted(validity)), tuple(cas), tuple(removed), origin)


class PublicRoots:
    """Root stores that count as public, each with a label such as ``mozilla@certifi-2026.10.19``."""

    def __init__(self, stores: list[tuple[str, list[x509.Certificate]]]) -> None:
        self.labels = [label for label, _ in stores]
        self._by_sha256: dict[str, list[str]] = {}
        self._by_spki: dict[str, list[str]] = {}
        self._by_subject: dict[x509.Name, list[tuple[CertInfo, str]]] = {}
        for label, certs in stores:
            for cert in certs:
                info = describe(cert)
                self._by_sha256.setdefault(info.sha256, []).append(label)
                self._by_spki.setdefault(info.spki_sha256, []).append(label)
                self._by_subject.setdefault(cert.subject, []).append((info, label))

    @classmethod
    def mozilla(cls, extra: list[tuple[str, list[x509.Certificate]]] | None = None) -> "PublicRoots":
        """Mozilla's store from certifi, plus ``extra`` stores (e.g. a Chrome snapshot, or a test's own root)."""
        return cls([(mozilla_label(), _certifi_roots()), *(extra or [])])

    def stores_of(self, info: CertInfo) -> list[str]:
        """Labels of the stores holding this certificate (or, for a self-issued one, its public key)."""
        found = list(self._by_sha256.get(info.sha256, []))
        if info.self_issued:
            found += [label for label in self._by_spki.get(info.spki_sha256, []) if label not in found]
        return found

    def issuer_candidates(self, cert: x509.Certificate) -> list[tuple[CertInfo, str]]:
        """Public roots named as ``cert``'s issuer (the signature still has to be checked)."""
        return self._by_subject.get(cert.issuer, [])


@lru_cache(maxsize=1)
def certifi_version() -> str:
    """The installed certifi release (e.g. ``2026.10.19.post1``): the date of the Mozilla store in use."""
    from importlib import metadata

    try:
        return metadata.version("certifi")
    except metadata.PackageNotFoundError:  # vendored copies have no metadata; the module still knows its date
        import certifi

        return str(certifi.__version__)


def mozilla_label() -> str:
    return f"mozilla@certifi-{certifi_version()}"


@lru_cache(maxsize=1)
def _certifi_roots() -> list[x509.Certificate]:
    import warnings

    import certifi

    with open(certifi.where(), "rb") as handle:
        data = handle.read()
    with warnings.catch_warnings():  # a few old roots have encodings cryptography warns about; they still load
        warnings.simplefilter("ignore")
        return x509.load_pem_x509_certificates(data)


@lru_cache(maxsize=1)
def default_public_roots() -> PublicRoots:
    return PublicRoots.mozilla()


def load_extra_store(path: Path) -> tuple[str, list[x509.Certificate]]:
    """A PEM bundle given with --public-roots, labelled by its file name."""
    from privca.inspect.sources import read_certificate_file

    loaded = read_certificate_file(path)
    return (f"file:{path.name}", [cert for cert, _ in loaded])


__all__ = ["CaCutoff", "PublicRoots", "RemovedRoot", "TrustData", "certifi_version", "default_public_roots",
           "load_extra_store", "load_trust_data", "mozilla_label", "shipped_trust_data"]

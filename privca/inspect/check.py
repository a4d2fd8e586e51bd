"""privca check: before uploading, will this certificate (and key, and chain) work for this product role?

Roles are the shipped issuance profiles of the same name, so issuance and check agree on EKUs, key types and
SAN rules; the Expressway version refines the EKU rules (decision.py). Every finding names its rule and source.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from privca.common import decision
from privca.inspect.certinfo import CertInfo, describe
from privca.inspect.chain import ChainPath, Pool, order_problem
from privca.errors import CertificateInputError, UsageError
from privca.common.findings import Finding, finding, worst
from privca.common.names import is_wildcard, printable
from privca.issuance.profiles import Profile, load_profile
from privca.inspect.publictrust import PublicRoots, default_public_roots
from privca.inspect.revstatus import RevocationChecker
from privca.inspect.sources import MAX_FILE_BYTES, Unit, load_file
from privca.rules import chain as chain_rules
from privca.rules import keys as key_rules
from privca.rules import names as name_rules
from privca.rules import validity as validity_rules
from privca.rules.catalogue import Breach, grade, rule

@dataclass(frozen=True)
class Role:
    """What a product role needs beyond its profile: the documents behind its EKU rule, and upload quirks."""

    name: str
    product: str
    eku_source: str
    expressway: bool = False  # key file unencrypted and ending with a newline (Expressway upload rules)
    no_wildcards_source: str | None = None  # products documented not to support wildcards: critical
    max_rsa_bits_source: str | None = None
    bundle_newline: bool = False  # Cisco Meeting Server bundles end with one newline


ROLES = {
    "expressway-c": Role("expressway-c", "Expressway-C", "FN74362", expressway=True, no_wildcards_source="TAC213872",
                         max_rsa_bits_source="EXP-TROUBLE-X14.3"),
    "expressway-e": Role("expressway-e", "Expressway-E", "EXP-ADMIN-X15.4", expressway=True,
                         no_wildcards_source="TAC213872", max_rsa_bits_source="EXP-TROUBLE-X14.3"),
    "expressway-server": Role("expressway-server", "Expressway X15.5 Server store", "TAC225693", expressway=True,
                              no_wildcards_source="TAC213872", max_rsa_bits_source="EXP-TROUBLE-X14.3"),
    "expressway-client": Role("expressway-client", "Expressway X15.5 Client store", "TAC225693", expressway=True,
                              no_wildcards_source="TAC213872", max_rsa_bits_source="EXP-TROUBLE-X14.3"),
    "cucm": Role("cucm", "Unified CM", "TAC213872", no_wildcards_source="CUCM-SEC-12.5SU6",
                 max_rsa_bits_source="CUCM-SEC-12.5SU6"),
    "unity": Role("unity", "Unity Connection", "FN74345", no_wildcards_source="CUCM-SEC-12.5SU6",
                  max_rsa_bits_source="CUCM-SEC-12.5SU6"),
    "cms": Role("cms", "Meeting Server", "TAC213821", bundle_newline=True),
    "cube": Role("cube", "CUBE", "TAC220380"),
}


@dataclass
class CheckReport:
    role: str
    profile: str
    expressway_version: str | None
    certificate: CertInfo
    chain: list[str]
    findings: list[Finding] = field(default_factory=list)

    @property
    def severity(self) -> str:
        return worst(self.findings) or "info"

    @property
    def verdict(self) -> str:
        """``fail``: the product refuses it or mTLS breaks; ``warn``: it works with caveats; ``pass``."""
        return {"critical": "fail", "warning": "warn", "info": "pass"}[self.severity]

    def to_dict(self, now: datetime) -> dict[str, Any]:
        return {"role": self.role, "profile": self.profile,
                "expressway_version": self.expressway_version, "verdict": self.verdict,
                "severity": self.severity, "certificate": self.certificate.to_dict(now), "chain": self.chain,
                "findings": [f.to_dict() for f in self.findings]}


def required_eku(role: str, profile: Profile, version: str | None) -> tuple[str, ...]:
    """The EKUs the role needs: the profile's, except where the Expressway version relaxes them."""
    if role == "expressway-e" and version in (decision.X15_4, decision.X15_5):
        return ("serverAuth",)  # X15.4 EnableServerEkuUpload; X15.5 server store (TAC 225482, 225693)
    if role == "expressway-client":
        return ("clientAuth",)  # what the X15.5 client store refuses an upload without (TAC 225693)
    return profile.eku


def check_certificate(
    cert_path: Path,
    *,
    role: str,
    now: datetime,
    key_path: Path | None = None,
    chain_path: Path | None = None,
    expressway_version: str | None = None,
    password: bytes | None = None,
    public_roots: PublicRoots | None = None,
    revocation: RevocationChecker | None = None,
) -> CheckReport:
    """Check one certificate file for ``role``. CertificateInputError when a file cannot be read at all."""
    if role not in ROLES:
        raise UsageError(f"--for {role!r}: unknown role; choose one of {', '.join(ROLES)}")
    spec = ROLES[role]
    profile = load_profile(role)
    cert_data, certs, embedded_keys = _read(cert_path, password)
    chain_data: bytes = b""
    chain_certs: list[Any] = []
    if chain_path is not None:
        chain_data, chain_certs, _ = _read(chain_path, password)
    infos = [describe(cert, der) for cert, der in certs + chain_certs]
    leaf, rest = infos[0], infos[1:]
    public = public_roots if public_roots is not None else default_public_roots()
    pool = Pool(rest, public)
    path = pool.path(leaf)
    needed = required_eku(role, profile, expressway_version)

    findings: list[Finding] = []
    findings += _leaf_shape(leaf, spec)
    findings += _eku(leaf, needed, spec, expressway_version)
    findings += _version(spec, expressway_version)
    findings += _validity(leaf, now)
    findings += _key(leaf, profile, spec)
    findings += _key_usage(leaf, profile, spec)
    findings += _names(leaf, profile, spec)
    findings += _chain(leaf, rest, path, needed, now, chain_given=bool(rest))
    findings += _key_file(leaf, key_path, embedded_keys, spec)
    if spec.bundle_newline:
        for name, data in ((cert_path, cert_data), (chain_path, chain_data)):
            if name is not None and data.lstrip().startswith(b"-----") and not data.endswith(b"\n"):
                findings.append(finding("warning", "bundle.newline", f"{name} does not end with a newline; Meeting "
                                        "Server bundles end with one trailing newline", "TAC221698"))
    if not any(f.severity == "critical" and f.rule.startswith(("chain.", "eku.", "signature.")) for f in findings):
        findings += _path_validation(leaf, path, needed, now)
    if revocation is not None:
        findings += revocation.findings(leaf, path.certs[1] if len(path.certs) > 1 else path.end.issuer, now)
    return CheckReport(role, profile.name, expressway_version, leaf, path.labels(), findings)


def _read(path: Path, password: bytes | None) -> tuple[bytes, list[Any], list[object]]:
    loaded = load_file(Unit("file", str(path), path), password=password)
    if loaded.error:
        raise CertificateInputError(f"{path}: {loaded.error}")
    if not loaded.certs:
        raise CertificateInputError(f"{path}: holds no certificate")
    try:
        data = path.read_bytes()[: MAX_FILE_BYTES]
    except OSError as exc:
        raise CertificateInputError(f"{path}: cannot read ({exc.strerror})") from None
    return data, loaded.certs, loaded.key_publics


def _leaf_shape(leaf: CertInfo, spec: Role) -> list[Finding]:
    found = []
    if leaf.is_ca:
        found.append(finding("critical", "leaf.is-ca", f"{leaf.label} is a CA certificate; {spec.product} needs its own "
                             "server or client certificate first in the file", "RFC5280"))
    for problem in leaf.problems:
        found.append(finding("warning", "encoding", problem, "RFC5280"))
    return found


def _eku(leaf: CertInfo, needed: tuple[str, ...], spec: Role, version: str | None) -> list[Finding]:
    if leaf.eku is None:
        return [finding("info", "eku.absent", "no EKU extension: OpenSSL-based peers accept it for any purpose",
                        "RFC5280")]
    missing = chain_rules.missing_eku(leaf.eku, needed)
    if not missing and spec.name == "expressway-client" and "serverAuth" not in leaf.eku:
        # The store takes it, but Cisco's working pattern (and privca's expressway-client profile) has both EKUs.
        return [finding("warning", "eku.client-store", f"EKU {'+'.join(leaf.eku)}: the X15.5 Client store takes it, "
                        "but Cisco's working pattern there is an internal-CA certificate with clientAuth and serverAuth "
                        "(privca issue --profile expressway-client)", spec.eku_source)]
    if not missing:
        return [finding("info", "eku.role", f"EKU {'+'.join(leaf.eku)} covers {'+'.join(needed)} for {spec.product}",
                        spec.eku_source)]
    why = {
        "clientAuth": "it cannot be presented as a TLS client certificate, so mTLS where this product initiates "
                      "(traversal, SIP TLS neighbour zones, clustering) fails",
        "serverAuth": "TLS clients reject it as a server certificate",
    }
    message = f"EKU {'+'.join(leaf.eku) or 'empty'} lacks {'+'.join(missing)} needed by {spec.product}: " + \
              "; ".join(why.get(name, f"{name} is required") for name in missing)
    if spec.name == "expressway-e" and version is None and missing == ["clientAuth"]:
        message += " (X15.4 and later accept serverAuth-only on Expressway-E: give --expressway-version)"
    if spec.name in ("cucm", "unity") and missing == ["clientAuth"]:
        message += f"; {spec.product} accepts the upload, but secure registration through Expressway-C fails"
    return [grade("check", Breach(rule("eku.role"), message), "critical", source=spec.eku_source)]


def _version(spec: Role, version: str | None) -> list[Finding]:
    if spec.name in ("expressway-server", "expressway-client") and version in (decision.LEGACY, decision.X15_4):
        return [finding("warning", "role.version", f"separate server and client certificates need Expressway X15.5; "
                        f"this Expressway runs {decision.version_text(version)}: use role expressway-c",
                        "TAC225693")]
    return []


def _validity(leaf: CertInfo, now: datetime) -> list[Finding]:
    breach = validity_rules.validity(leaf.not_before, leaf.not_after, now)
    if breach is None:
        return []
    return [grade("check", breach, "warning" if breach.rule.id == "validity.expiring" else "critical")]


def _key(leaf: CertInfo, profile: Profile, spec: Role) -> list[Finding]:
    if leaf.key_type == "rsa" and (breach := key_rules.rsa_size(leaf.key_size)) is not None:
        if breach.rule.id == "key.rsa-min":
            return [grade("check", breach, "critical")]
        if spec.max_rsa_bits_source:
            return [grade("check", breach, "critical", source=spec.max_rsa_bits_source)]
    source = "EXP-CERT-X15.4" if spec.expressway else "CUCM-ADMIN-12.5SU3" if spec.name in ("cucm", "unity") else \
        "TAC220380"
    breach = key_rules.algorithm(leaf.key_type) or \
        key_rules.allowed_by_profile(leaf.key_text, profile.key_allowed, profile.name)
    return [grade("check", breach, "warning", source=source)] if breach else []


def _key_usage(leaf: CertInfo, profile: Profile, spec: Role) -> list[Finding]:
    if leaf.key_usage is None:
        return []
    found = []
    if "digitalSignature" not in leaf.key_usage:
        found.append(finding("warning", "key-usage.digital-signature", "keyUsage lacks digitalSignature: TLS 1.3 "
                             "and ECDHE handshakes need it", "RFC8446"))
    if {"keyCertSign", "cRLSign"} & set(leaf.key_usage) and not leaf.is_ca:
        found.append(finding("warning", "key-usage.ca", "keyUsage has CA bits (keyCertSign/cRLSign) on a leaf",
                             "RFC5280"))
    expected = profile.key_usage_for(leaf.key_type)
    missing = [name for name in expected if name not in leaf.key_usage and name != "digitalSignature"]
    if missing and spec.name in ("cucm", "unity"):
        found.append(finding("warning", "key-usage.profile", f"keyUsage lacks {', '.join(missing)}: {spec.product} "
                             "CSRs ask for it and the CA must not drop it", "CUCM-ADMIN-12.5SU3"))
    return found


def _names(leaf: CertInfo, profile: Profile, spec: Role) -> list[Finding]:
    if not leaf.sans:
        return [grade("check", name_rules.missing_san(), "critical")] if profile.san_required else []
    found: list[Finding] = []
    for entry in leaf.sans:
        if entry.kind == "dns" and (wildcard := name_rules.wildcard(entry.value)) is not None:
            if spec.no_wildcards_source:
                found.append(grade("check", wildcard, "critical", source=spec.no_wildcards_source))
            else:  # not documented as unsupported by this product, but privca never issues one for it
                found.append(grade("check", wildcard, "warning"))
        elif entry.kind == "dns" and (wrong := name_rules.dns_syntax(entry.value)) is not None:
            found.append(grade("check", wrong, "warning"))
        elif (wrong := name_rules.san_type(entry, profile.san_types, profile.name)) is not None:
            found.append(grade("check", wrong, "warning"))
    too_long = name_rules.length(leaf.sans, profile.max_san_length)
    if too_long is not None:
        found.append(grade("check", too_long, "warning"))
    if profile.cn_must_be_in_san and (cn := name_rules.cn_in_san(leaf.common_name, leaf.sans)) is not None:
        found.append(grade("check", cn, "warning"))
    return found


def _chain(leaf: CertInfo, rest: list[CertInfo], path: ChainPath, needed: tuple[str, ...], now: datetime, *,
           chain_given: bool) -> list[Finding]:
    found: list[Finding] = []
    if (weak := chain_rules.weak_signature(leaf.signature_hash, self_issued=False, label=leaf.label)) is not None:
        found.append(grade("check", weak, "critical", source="EXP-CERT-X15.4"))
    if not chain_given:
        found.append(_no_chain_given(path))
    if rest and (order := chain_rules.order(order_problem([leaf, *rest]))) is not None:
        found.append(grade("check", order, "warning"))
    on_path = {c.sha256 for c in path.certs}
    for extra in rest:
        if extra.sha256 not in on_path:
            found.append(finding("warning", "chain.extra", f"{extra.label} is not part of this certificate's chain",
                                 "RFC5280"))
    if path.end.status == "bad-signature":
        found.append(grade("check", chain_rules.bad_signature(str(path.top.issuer), path.top.label), "critical"))
    elif path.end.status == "missing" and chain_given:
        found.append(grade("check", chain_rules.incomplete(str(path.top.issuer)), "warning"))
    for ca in path.cas:
        found += _ca_on_path(ca, leaf, needed, now)
    return found


def _no_chain_given(path: ChainPath) -> Finding:
    if path.end.store:
        issuer = path.end.issuer.label if path.end.issuer else "?"
        return finding("info", "chain.public", f"issued directly under {issuer} ({path.end.store})", "RFC5280")
    return finding("info", "chain.none", "no chain given (--chain): the CA certificates must be in the product's "
                   "trust store before this certificate is uploaded", "EXP-MRA-X15.0")


def _ca_on_path(ca: CertInfo, leaf: CertInfo, needed: tuple[str, ...], now: datetime) -> list[Finding]:
    breaches: list[Breach | None] = [
        None if ca.is_ca else chain_rules.not_a_ca(ca.label),
        chain_rules.weak_signature(ca.signature_hash, self_issued=ca.self_issued, label=f"CA {ca.label}"),
        *chain_rules.ca_restricts(ca.label, ca.eku, needed),
        chain_rules.ca_expiry(ca.label, ca.not_after, leaf.not_after, now),
    ]
    return [grade("check", breach, "warning" if breach.rule.id == "chain.outlives" else "critical")
            for breach in breaches if breach is not None]


def _key_file(leaf: CertInfo, key_path: Path | None, embedded: list[object], spec: Role) -> list[Finding]:
    public_key = leaf.cert.public_key()
    if key_path is None:
        if embedded:
            matches = any(key == public_key for key in embedded)
            return [finding("info" if matches else "critical", "key.match" if matches else "key.mismatch",
                            "the private key in the certificate "
                            "file " + ("matches" if matches else "does not match the certificate"), "EXP-CERT-X15.4")]
        return []
    data = _read_key(key_path)
    found: list[Finding] = []
    encrypted = b"ENCRYPTED" in data[:200] if data.lstrip().startswith(b"-----") else False
    if spec.expressway and not data.endswith(b"\n"):
        found.append(finding("critical", "key.newline", f"{key_path} does not end with a newline; Expressway MRA fails "
                             "with such a key file", "EXP-TROUBLE-X14.3"))
    if encrypted:
        found.append(finding("critical" if spec.expressway else "info", "key.encrypted",
                             f"{key_path} is password-protected" + ("; Expressway needs an unencrypted key file"
                                                                   if spec.expressway else
                                                                   "; the match with the certificate was not checked"),
                             "EXP-ADMIN-X15.4"))
        return found
    key = _load_key(key_path, data)
    if key.public_key() == public_key:
        found.append(finding("info", "key.match", f"{key_path} matches the certificate", "RFC5280"))
    else:
        found.append(finding("critical", "key.mismatch", f"{key_path} does not match the certificate: the product "
                             "refuses the pair", "EXP-CERT-X15.4"))
    return found


def _read_key(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            data = handle.read(64 * 1024 + 1)
    except OSError as exc:
        raise CertificateInputError(f"{path}: cannot read the key ({exc.strerror})") from None
    if len(data) > 64 * 1024 or not data.strip():
        raise CertificateInputError(f"{path}: not a private key file")
    return data


def _load_key(path: Path, data: bytes) -> Any:
    from cryptography.exceptions import UnsupportedAlgorithm
    from cryptography.hazmat.primitives.serialization import load_der_private_key, load_pem_private_key

    try:
        if data.lstrip().startswith(b"-----"):
            return load_pem_private_key(data, None)
        return load_der_private_key(data, None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        raise CertificateInputError(f"{path}: not a readable PEM or DER private key") from None


def _path_validation(leaf: CertInfo, path: ChainPath, needed: tuple[str, ...], now: datetime) -> list[Finding]:
    """Cross-check with pyca/cryptography's RFC 5280 verifier, which enforces EKU through the chain as OpenSSL does."""
    if not path.complete or path.end.issuer is None:
        return []
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    anchor = path.end.issuer.cert
    intermediates = [c.cert for c in path.certs[1:] if c.cert != anchor]
    builder = PolicyBuilder().store(Store([anchor])).time(now)
    found = []
    for purpose in needed:
        try:
            if purpose == "serverAuth":
                dns = next((e.value for e in leaf.sans if e.kind == "dns" and not is_wildcard(e.value)), None)
                if dns is None:
                    continue
                builder.build_server_verifier(x509.DNSName(dns)).verify(leaf.cert, intermediates)
            elif purpose == "clientAuth":
                builder.build_client_verifier().verify(leaf.cert, intermediates)
        except VerificationError as exc:
            found.append(finding("warning", "path.verify", f"a strict RFC 5280 verifier rejects it for {purpose}: "
                                 f"{printable(str(exc), 200)}", "PYCA-VERIFY"))
        except ValueError as exc:  # e.g. a key type the verifier does not support
            found.append(finding("info", "path.verify", f"not cross-checked for {purpose}: {printable(str(exc), 120)}",
                                 "PYCA-VERIFY"))
        else:
            found.append(finding("info", "path.verify", f"chain verifies for {purpose} up to {path.end.issuer.label}",
                                 "PYCA-VERIFY"))
    return found


__all__ = ["ROLES", "CheckReport", "Role", "check_certificate", "required_eku"]

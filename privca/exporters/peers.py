"""The peers privca exports trust bundles for, and what goes into each bundle.

A peer is a name (``privca export NAME``), a title for people, and a builder: trust context in, files out
(relative path -> bytes). Every bundle has an ``INSTRUCTIONS.md`` rendered from ``templates/<peer>/``.
Sources for each product's rules are cited in its template and in ``docs/peers/<peer>.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from privca.exporters.context import TrustContext, TrustedCA
from privca.exporters.render import render
from privca.exporters.truststore import DEFAULT_PASSWORD, java_truststore

Files = dict[str, bytes]

CHAIN_P7B = "privca-ca-chain.p7b"
CMS_BUNDLE = "privca-ca-bundle.crt"
EXPRESSWAY_FILE = "privca-trusted-ca.pem"
CUBE_TRUSTPOINTS = "cube-trustpoints.cfg"
CUBE_TLS_PROFILE = "cube-tls-profile.cfg"
CUBE_ENROLL = "cube-enroll.cfg"
CUBE_ENROLL_EST = "cube-enroll-est.cfg"
PEM_BUNDLE = "privca-ca-bundle.pem"
P7B_BUNDLE = "privca-ca-bundle.p7b"
TRUSTSTORE = "privca-truststore.p12"


@dataclass(frozen=True)
class Peer:
    name: str
    title: str
    summary: str
    build: Callable[[TrustContext, "Peer"], Files]

    def instructions(self, ctx: TrustContext, **values: Any) -> bytes:
        return render(f"{self.name}/INSTRUCTIONS.md.j2", ctx=ctx, peer=self, **values)


def _pem_per_ca(cas: Sequence[TrustedCA]) -> Files:
    return {f"{ca.stem}.pem": ca.pem.encode() for ca in cas}


def _pkcs7(cas: Sequence[TrustedCA], *, pem: bool) -> bytes:
    """A certificates-only PKCS#7 (RFC 2315 degenerate SignedData), as Windows and Cisco Unified OS take it."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import Encoding, pkcs7

    certs = [x509.load_der_x509_certificate(ca.der) for ca in cas]
    return pkcs7.serialize_certificates(certs, Encoding.PEM if pem else Encoding.DER)


def _concatenated(cas: Sequence[TrustedCA]) -> bytes:
    return "".join(ca.pem for ca in cas).encode()  # each PEM ends with a newline, so the file does too


def _unified_os(ctx: TrustContext, peer: Peer) -> Files:
    """CUCM, IM and Presence and Unity Connection: one PEM per CA, and a PKCS#7 chain as an alternative."""
    files = _pem_per_ca(ctx.anchors)
    files[CHAIN_P7B] = _pkcs7(ctx.anchors, pem=True)
    files["INSTRUCTIONS.md"] = peer.instructions(ctx, chain_file=CHAIN_P7B)
    return files


def _cms(ctx: TrustContext, peer: Peer) -> Files:
    # Meeting Server bundles list intermediates, then the root, and end with one newline (TAC 221698).
    return {CMS_BUNDLE: _concatenated(ctx.leaf_first),
            "INSTRUCTIONS.md": peer.instructions(ctx, bundle=CMS_BUNDLE)}


def _cube(ctx: TrustContext, peer: Peer) -> Files:
    values = {"trustpoints_file": CUBE_TRUSTPOINTS, "tls_profile_file": CUBE_TLS_PROFILE, "enroll_file": CUBE_ENROLL,
              "enroll_est_file": CUBE_ENROLL_EST}
    return {CUBE_TRUSTPOINTS: render("cube/cube-trustpoints.cfg.j2", ctx=ctx, peer=peer),
            CUBE_TLS_PROFILE: render("cube/cube-tls-profile.cfg.j2", ctx=ctx, peer=peer),
            CUBE_ENROLL: render("cube/cube-enroll.cfg.j2", ctx=ctx, peer=peer),
            CUBE_ENROLL_EST: render("cube/cube-enroll-est.cfg.j2", ctx=ctx, peer=peer),
            "INSTRUCTIONS.md": peer.instructions(ctx, **values)}


def _expressway(ctx: TrustContext, peer: Peer) -> Files:
    return {EXPRESSWAY_FILE: _concatenated(ctx.anchors),
            "INSTRUCTIONS.md": peer.instructions(ctx, ca_file=EXPRESSWAY_FILE)}


def _pem(ctx: TrustContext, peer: Peer) -> Files:
    return {PEM_BUNDLE: _concatenated(ctx.cas), "INSTRUCTIONS.md": peer.instructions(ctx, bundle=PEM_BUNDLE)}


def _der(ctx: TrustContext, peer: Peer) -> Files:
    files = {f"{ca.stem}.cer": ca.der for ca in ctx.cas}
    files["INSTRUCTIONS.md"] = peer.instructions(ctx)
    return files


def _p7b(ctx: TrustContext, peer: Peer) -> Files:
    return {P7B_BUNDLE: _pkcs7(ctx.cas, pem=False), "INSTRUCTIONS.md": peer.instructions(ctx, bundle=P7B_BUNDLE)}


def _pkcs12(ctx: TrustContext, peer: Peer) -> Files:
    store = java_truststore([(ca.alias, ca.der) for ca in ctx.cas])
    return {TRUSTSTORE: store,
            "INSTRUCTIONS.md": peer.instructions(ctx, truststore=TRUSTSTORE, password=DEFAULT_PASSWORD)}


PEERS: dict[str, Peer] = {peer.name: peer for peer in (
    Peer("cucm", "Cisco Unified Communications Manager and IM and Presence",
         "one PEM per CA for tomcat-trust, CallManager-trust and cup-xmpp-trust, plus a PKCS#7 chain", _unified_os),
    Peer("unity", "Cisco Unity Connection",
         "one PEM per CA for tomcat-trust and CallManager-trust, plus a PKCS#7 chain", _unified_os),
    Peer("cms", "Cisco Meeting Server", "one PEM bundle (intermediates, then roots) for the MMP trust commands", _cms),
    Peer("cube", "Cisco Unified Border Element (IOS-XE)",
         "IOS-XE configuration: a trustpoint per CA with the certificate to paste, and the TLS profile", _cube),
    Peer("expressway", "Cisco Expressway-C and Expressway-E",
         "one PEM file for Maintenance > Security > Trusted CA certificate", _expressway),
    Peer("pem", "Any product that takes a PEM CA file", "every CA in one PEM file", _pem),
    Peer("der", "Any product that takes DER (.cer) files", "one DER file per CA", _der),
    Peer("p7b", "Windows and products that take PKCS#7", "every CA in one DER PKCS#7 file", _p7b),
    Peer("pkcs12", "Java-based tools (PKCS#12 trust store)",
         f"a PKCS#12 trust store that keytool and Java read (password {DEFAULT_PASSWORD})", _pkcs12),
)}
ALL = "all"


def peer_names() -> list[str]:
    return list(PEERS)

"""Property-based fuzzing of CSR parsing and policy (hypothesis; a short run in CI).

Properties: whatever the bytes, ``load_csr`` either returns a CSR or raises CSRError; ``check`` never raises and
either accepts or lists problems; what it accepts is sound (names pass the SAN rules, the subject is printable)
and builds into a certificate that parses back with the same names.
"""

from __future__ import annotations

import ipaddress
from datetime import datetime, timedelta, timezone
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from privca.errors import CSRError
from privca.common.names import dns_name_problem
from privca.issuance.policy import check, load_csr
from privca.issuance.profiles import load_profile

FUZZ = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                         HealthCheck.function_scoped_fixture])
KEY = ec.generate_private_key(ec.SECP256R1())
CA_KEY = ec.generate_private_key(ec.SECP256R1())
NOW = datetime(2026, 11, 29, tzinfo=timezone.utc)


def _ca() -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(x509.NameOID.COMMON_NAME, "Fuzz CA")])
    ski = x509.SubjectKeyIdentifier.from_public_key(CA_KEY.public_key())
    return (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(CA_KEY.public_key())
            .serial_number(1).not_valid_before(NOW - timedelta(days=1)).not_valid_after(NOW + timedelta(days=3650))
            .add_extension(ski, critical=False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True).sign(CA_KEY, hashes.SHA256()))


CA = _ca()
PROFILES = [load_profile(name) for name in ("expressway-c", "cucm", "cube")]


def _valid_csr(names: list[str], cn: str | None = None, ips: list[str] = ()) -> bytes:  # type: ignore[assignment]
    subject = [x509.NameAttribute(x509.NameOID.COMMON_NAME, cn or names[0])] if (cn or names) else []
    general: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    general += [x509.IPAddress(ipaddress.ip_address(a)) for a in ips]
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if general:
        builder = builder.add_extension(x509.SubjectAlternativeName(general), critical=False)
    return builder.sign(KEY, hashes.SHA256()).public_bytes(serialization.Encoding.DER)


SEEDS = [_valid_csr(["expc1.example.com", "expc.example.com"]), _valid_csr(["cucm1.example.com"], ips=["10.0.0.1"])]


def _run_policy(data: bytes) -> Any:
    """load + check every profile; returns the accepted requests. Any exception but CSRError fails the test."""
    try:
        csr = load_csr(data, "fuzz.csr")
    except CSRError as exc:
        assert exc.message.startswith("fuzz.csr: ")
        return []
    accepted = []
    for profile in PROFILES:
        request, problems = check(csr, csr.public_bytes(serialization.Encoding.DER), "fuzz.csr", profile)
        assert (request is None) == bool(problems)
        assert all(isinstance(p, str) and p.isprintable() for p in problems)
        if request is not None:
            accepted.append(request)
    return accepted


def _assert_sound(request: Any) -> None:
    """What policy accepted obeys the rules and builds into a certificate with the same names."""
    from privca.issuance.builder import leaf_builder, validity

    for entry in request.sans:
        if entry.kind == "dns":
            assert dns_name_problem(entry.value) is None, entry.value
    for attribute in request.subject:
        assert str(attribute.value).isprintable()
    not_before, not_after = validity(NOW, 30)
    cert = leaf_builder(request, CA, 12345, not_before, not_after, None, None).sign(CA_KEY, hashes.SHA256())
    parsed = x509.load_der_x509_certificate(cert.public_bytes(serialization.Encoding.DER))
    if request.general_names:
        assert list(parsed.extensions.get_extension_for_class(x509.SubjectAlternativeName).value) == request.general_names


@FUZZ
@given(st.binary(max_size=4096))
def test_random_bytes(data: bytes) -> None:
    for request in _run_policy(data):
        _assert_sound(request)


@FUZZ
@given(st.sampled_from(SEEDS), st.data())
def test_mutated_valid_csrs(seed: bytes, data: st.DataObject) -> None:
    mutated = bytearray(seed)
    for _ in range(data.draw(st.integers(1, 8))):
        kind = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate", "duplicate"]))
        at = data.draw(st.integers(0, max(0, len(mutated) - 1)))
        if kind == "flip" and mutated:
            mutated[at] ^= 1 << data.draw(st.integers(0, 7))
        elif kind == "set" and mutated:
            mutated[at] = data.draw(st.integers(0, 255))
        elif kind == "insert":
            mutated[at:at] = data.draw(st.binary(min_size=1, max_size=16))
        elif kind == "delete":
            del mutated[at:at + data.draw(st.integers(1, 16))]
        elif kind == "truncate":
            del mutated[at:]
        elif kind == "duplicate":
            end = data.draw(st.integers(at, len(mutated)))
            mutated[end:end] = mutated[at:end]
    as_pem = data.draw(st.booleans())
    blob = bytes(mutated)
    if as_pem:
        import base64

        blob = b"-----BEGIN CERTIFICATE REQUEST-----\n" + base64.encodebytes(blob) + b"-----END CERTIFICATE REQUEST-----\n"
    for request in _run_policy(blob):
        _assert_sound(request)


_LABEL_CHARS = st.characters(codec="utf-8", exclude_categories=("Cs",))


@FUZZ
@given(st.lists(st.text(_LABEL_CHARS, min_size=0, max_size=70), min_size=1, max_size=6),
       st.one_of(st.none(), st.text(_LABEL_CHARS, max_size=80)))
def test_generated_names(names: list[str], cn: str | None) -> None:
    """Well-formed CSRs with arbitrary (hostile) names: policy decides, never crashes, never lets a bad name by."""
    try:
        data = _valid_csr(names, cn)
    except (ValueError, TypeError):
        return  # cryptography refuses to even build it
    for request in _run_policy(data):
        _assert_sound(request)


def test_the_seeds_themselves_are_accepted() -> None:
    """Positive control: the unmutated seeds pass, so the properties above are not vacuous."""
    assert _run_policy(SEEDS[0]) and _run_policy(SEEDS[1])


@pytest.mark.parametrize("good", ["expc1.example.com", "xn--mnchen-3ya.example.com"])
def test_generated_names_positive_control(good: str) -> None:
    accepted = _run_policy(_valid_csr([good]))
    assert accepted and [e.value for e in accepted[0].sans] == [good]

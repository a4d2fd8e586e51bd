"""CA keys in a PKCS#11 token (SoftHSM2): everything signed in the token is checked with openssl, and what is in
the token with OpenSC's pkcs11-tool.

One SoftHSM2 token folder serves the whole session. SoftHSM reads SOFTHSM2_CONF when its module is initialised
and python-pkcs11 loads a module once per process, so the variable is set for this process before the first load
and never changed; flows that need another environment (a wrong PIN, no token) run privca as a subprocess, as a
user would.
"""

from __future__ import annotations

import os
import re
import shutil
import sqlite3
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.x509 import ocsp
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID, SignatureAlgorithmOID

from conftest import build_csr, privca_subprocess, run_tool, snapshot, venv_tool
from privca.ledger.cas import active as active_ca

MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN = "privca test token"  # spaces, to prove labels survive the key URI
LAB_TOKEN = "privca lab token"  # library-level experiments with keys made by hand
PIN_TOKEN = "privca pin token"  # never logged in to by this process
PIN = "4711-user-pin"
KEY_TYPES = ["rsa:3072", "ec:secp256r1", "ec:secp384r1"]


@dataclass
class SoftHSM:
    conf: Path
    env: dict[str, str]  # what a privca subprocess needs to reach the token


@pytest.fixture(scope="session")
def softhsm(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """Fresh SoftHSM2 tokens in a temporary folder. Fails, never skips, when SoftHSM2 or OpenSC is missing."""
    if not os.path.exists(MODULE) or shutil.which("softhsm2-util") is None or shutil.which("pkcs11-tool") is None:
        pytest.fail("softhsm2 and opensc are required for the HSM tests; run scripts/test to install them")
    folder = tmp_path_factory.mktemp("softhsm")
    (folder / "tokens").mkdir()
    conf = folder / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {folder / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("SOFTHSM2_CONF", str(conf))
        for label in (TOKEN, LAB_TOKEN, PIN_TOKEN):
            run_tool("softhsm2-util", "--init-token", "--free", "--label", label, "--so-pin", "4711-so-pin",
                     "--pin", PIN, check=True)
        # An empty passphrase variable: a token store must never need the key-file passphrase.
        yield SoftHSM(conf, {"SOFTHSM2_CONF": str(conf), "PRIVCA_PKCS11_PIN": PIN, "PRIVCA_PASSPHRASE": ""})


def pkcs11_tool(*args: str | Path, token: str = TOKEN) -> str:
    done = run_tool("pkcs11-tool", "--module", MODULE, "--token-label", token, "--login", "--pin", PIN, *args)
    assert done.returncode == 0, done.stderr
    return done.stdout


def token_objects(token: str = TOKEN) -> dict[tuple[str, str], str]:
    """pkcs11-tool's listing of a token, as {(object kind, label): description}: an independent reading."""
    blocks: dict[tuple[str, str], str] = {}
    for block in re.split(r"\n(?=\S)", pkcs11_tool("--list-objects", token=token)):
        label = re.search(r"label:\s+(.*?)\s*$", block, re.M)
        if label:
            blocks[(block.split(" Object")[0], label.group(1))] = block
    return blocks


def ca_rows(store: Path) -> list[sqlite3.Row]:
    conn = sqlite3.connect(store / "privca.db")
    conn.row_factory = sqlite3.Row
    try:
        return conn.execute("SELECT * FROM cas ORDER BY id").fetchall()
    finally:
        conn.close()


def object_label(key_ref: str) -> str:
    from privca.keys.hsm import TokenKeyRef

    return TokenKeyRef.parse(key_ref).label


def init_args(store: Path, key_type: str | None, *extra: str | Path) -> list[str | Path]:
    args: list[str | Path] = ["init", "--store", store, "--root-cn", f"HSM Test Root {key_type}", "--issuing-cn",
                              f"HSM Test Issuing {key_type}", "--org", "Example Ltd", "--crl-url",
                              "http://pki.example.test/crl", "--ocsp-url", "http://pki.example.test/ocsp",
                              "--token-label", TOKEN, "--second-root", *extra]  # one unrelated root per key type
    return args + (["--key-type", key_type] if key_type else [])


def write_csr(path: Path) -> Path:
    path.write_bytes(build_csr(ec.generate_private_key(ec.SECP256R1())).public_bytes(serialization.Encoding.PEM))
    return path


def pem_file(path: Path, *certs: x509.Certificate) -> Path:
    path.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs))
    return path


def impostor(cert: x509.Certificate, now: datetime) -> x509.Certificate:
    """A self-signed CA with ``cert``'s name, key identifier and key type but another key: only a signature check
    tells them apart."""
    public = cert.public_key()
    key: Any = (rsa.generate_private_key(65537, 2048) if isinstance(public, rsa.RSAPublicKey)
                else ec.generate_private_key(public.curve))  # type: ignore[union-attr]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    return (x509.CertificateBuilder().subject_name(cert.subject).issuer_name(cert.subject)
            .add_extension(ski, critical=False)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True)
            .sign(key, hashes.SHA256()))


@dataclass
class TokenCA:
    key_type: str
    store: Path
    leaf: Path
    chain: Path
    now: datetime

    def issuer(self, role: str = "issuing") -> Any:
        """The CA opened in this process, as revocation and OCSP code open it."""
        from privca.authority.ca import load_issuer
        from privca.keys.material import Passphrase
        from privca.keys.keystore import CASecrets
        from privca.ledger.store import Store

        store = Store(self.store)
        try:
            return load_issuer(store, active_ca(store.ledger, role), CASecrets(pin=Passphrase(PIN.encode())))
        finally:
            store.close()

    @property
    def chain_certs(self) -> list[x509.Certificate]:
        return x509.load_pem_x509_certificates(self.chain.read_bytes())


@pytest.fixture(scope="session", params=KEY_TYPES)
def token_ca(request: pytest.FixtureRequest, softhsm: SoftHSM, tmp_path_factory: pytest.TempPathFactory) -> TokenCA:
    """``privca init`` with the CA keys generated in the token, then ``privca issue`` for an Expressway-C CSR, run
    as a user runs them (the PIN from the environment, no passphrase at all)."""
    key_type = request.param
    folder = tmp_path_factory.mktemp("token-ca")
    store = folder / "store"
    done = privca_subprocess(*init_args(store, key_type, "--pkcs11-module", MODULE), env=softhsm.env)
    assert done.returncode == 0, done.stderr
    assert f"keys in token '{TOKEN}'" in done.stdout
    done = privca_subprocess("issue", write_csr(folder / "expc.csr"), "--store", store, "--out", folder / "out",
                             env=softhsm.env)
    assert done.returncode == 0, done.stderr
    out = folder / "out"
    return TokenCA(key_type, store, out / "expc.pem", out / "expc.chain.pem", datetime.now(timezone.utc))


rsa_only = pytest.mark.parametrize("token_ca", ["rsa:3072"], indirect=True)


# --- issuing with token keys ----------------------------------------------------------------------------------

def test_certificates_issued_by_a_token_ca_verify_with_openssl(token_ca: TokenCA, tmp_path: Path) -> None:
    for purpose in ("sslserver", "sslclient"):
        done = run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", token_ca.chain, token_ca.leaf)
        assert done.returncode == 0 and done.stdout.strip().endswith(": OK"), done.stdout + done.stderr
    leaf = x509.load_pem_x509_certificate(token_ca.leaf.read_bytes())
    expected = {"rsa:3072": SignatureAlgorithmOID.RSA_WITH_SHA256, "ec:secp256r1": SignatureAlgorithmOID.ECDSA_WITH_SHA256,
                "ec:secp384r1": SignatureAlgorithmOID.ECDSA_WITH_SHA384}[token_ca.key_type]
    assert leaf.signature_algorithm_oid == expected
    # Negative control: a root with the same name but another key does not make the chain verify.
    issuing, root = token_ca.chain_certs
    done = run_tool("openssl", "verify", "-CAfile", pem_file(tmp_path / "fake-root.pem", impostor(root, token_ca.now)),
                    "-untrusted", pem_file(tmp_path / "issuing.pem", issuing), token_ca.leaf)
    assert done.returncode != 0 and "signature failure" in done.stdout + done.stderr


def test_token_signed_chain_passes_pkilint(token_ca: TokenCA, tmp_path: Path) -> None:
    """RFC 5280 conformance of what the token signed, including the DER of ECDSA signatures made from r || s.
    (tests/test_interop.py holds pkilint's negative control.)"""
    issuing, root = token_ca.chain_certs
    root_pem, issuing_pem = pem_file(tmp_path / "root.pem", root), pem_file(tmp_path / "issuing.pem", issuing)
    lint = venv_tool("lint_pkix_signer_signee_cert_chain")
    for signer, signee in ((root_pem, issuing_pem), (issuing_pem, token_ca.leaf)):
        result = run_tool(lint, "lint", "-s", "ERROR", signer, signee)
        assert result.returncode == 0, result.stdout + result.stderr


def test_no_private_key_material_of_a_token_ca_is_in_the_store(token_ca: TokenCA, store_path: Path) -> None:
    files = [path for path in token_ca.store.rglob("*") if path.is_file()]
    assert any(path.name == "privca.db" for path in files)
    assert not [path for path in files if b"PRIVATE KEY" in path.read_bytes()]
    assert list((token_ca.store / "keys").iterdir()) == []
    rows = ca_rows(token_ca.store)
    assert [row["name"] for row in rows] == ["root-1", "issuing-1"]
    for row in rows:
        assert row["key_ref"].startswith("pkcs11:token=privca%20test%20token;object=privca%20")
        assert row["key_ref"].endswith(f";type=private?module-path={MODULE}")
        assert row["key_type"] == token_ca.key_type
    # Negative control: the same search finds the encrypted key files of a store with file keys.
    assert [path.name for path in store_path.rglob("*") if path.is_file() and b"PRIVATE KEY" in path.read_bytes()]


def test_token_keys_are_sensitive_sign_only_and_never_extractable(token_ca: TokenCA) -> None:
    from privca.errors import KeyMaterialError

    objects = token_objects()
    for row in ca_rows(token_ca.store):
        label = object_label(row["key_ref"])
        private = objects[("Private Key", label)]
        assert re.search(r"Access:\s+sensitive, always sensitive, never extractable, local", private), private
        assert re.search(r"Usage:\s+sign\s*$", private, re.M), private
        assert ("Public Key", label) in objects
    key = token_ca.issuer().key
    with pytest.raises(KeyMaterialError, match="kept in the token"):
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                          serialization.NoEncryption())
    with pytest.raises(KeyMaterialError, match="kept in the token"):
        key.private_numbers()


def test_token_refuses_to_reveal_the_secret_value(token_ca: TokenCA) -> None:
    import pkcs11

    from privca.keys.hsm import open_token
    from privca.keys.material import Passphrase

    session = open_token(MODULE, TOKEN, lambda: Passphrase(PIN.encode())).session
    label = object_label(ca_rows(token_ca.store)[1]["key_ref"])
    private = session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label=label)
    secret = pkcs11.Attribute.PRIVATE_EXPONENT if token_ca.key_type.startswith("rsa") else pkcs11.Attribute.VALUE
    with pytest.raises(pkcs11.AttributeSensitive):
        private[secret]
    # Control: the public half of the same object is readable.
    assert private[pkcs11.Attribute.LABEL] == label


@rsa_only
def test_rsa_pss_signatures_from_a_token_key(token_ca: TokenCA, tmp_path: Path) -> None:
    """privca itself signs with PKCS#1 v1.5 (docs/hsm.md says why); the token key signs PSS when asked."""
    from privca.issuance.builder import base_builder, validity

    issuer = token_ca.issuer()
    leaf = x509.load_pem_x509_certificate(token_ca.leaf.read_bytes())
    not_before, not_after = validity(token_ca.now, 30)
    builder = (base_builder(leaf.subject, issuer.cert.subject, leaf.public_key(), x509.random_serial_number(),
                            not_before, not_after,
                            issuer.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value)
               .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
               .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    for salt in (padding.PSS.DIGEST_LENGTH, padding.PSS.MAX_LENGTH):
        pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=salt)
        cert = builder.sign(issuer.key, hashes.SHA256(), rsa_padding=pss)
        path = pem_file(tmp_path / "pss.pem", cert)
        text = run_tool("openssl", "x509", "-in", path, "-noout", "-text").stdout
        assert "rsassaPss" in text
        assert ("Salt Length: 0x20" in text) == (salt is padding.PSS.DIGEST_LENGTH)
        done = run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", token_ca.chain, path)
        assert done.returncode == 0, done.stdout + done.stderr
    crl = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
           .last_update(token_ca.now - timedelta(minutes=1)).next_update(token_ca.now + timedelta(days=1))
           .sign(issuer.key, hashes.SHA256(), rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()),
                                                                      padding.PSS.DIGEST_LENGTH)))
    path = tmp_path / "pss.crl"
    path.write_bytes(crl.public_bytes(serialization.Encoding.PEM))
    done = run_tool("openssl", "crl", "-in", path, "-CAfile", token_ca.chain, "-noout")
    assert done.returncode == 0 and "verify OK" in done.stdout + done.stderr
    # Negative control: a PSS certificate with one flipped signature bit fails.
    der = bytearray(cert.public_bytes(serialization.Encoding.DER))
    der[-1] ^= 1
    (tmp_path / "bad.der").write_bytes(bytes(der))
    run_tool("openssl", "x509", "-inform", "DER", "-in", tmp_path / "bad.der", "-out", tmp_path / "bad.pem", check=True)
    done = run_tool("openssl", "verify", "-CAfile", token_ca.chain, tmp_path / "bad.pem")
    assert done.returncode != 0


# --- revocation artefacts signed in the token (library level) -------------------------------------------------

def test_crl_signed_in_the_token_verifies_with_openssl(token_ca: TokenCA, tmp_path: Path) -> None:
    issuer = token_ca.issuer()
    leaf = x509.load_pem_x509_certificate(token_ca.leaf.read_bytes())

    def crl(number: int, revoked: list[int]) -> Path:
        builder = (x509.CertificateRevocationListBuilder().issuer_name(issuer.cert.subject)
                   .last_update(token_ca.now - timedelta(minutes=1)).next_update(token_ca.now + timedelta(days=7))
                   .add_extension(x509.CRLNumber(number), critical=False)
                   .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.cert.public_key()),
                                  critical=False))
        for serial in revoked:
            builder = builder.add_revoked_certificate(
                x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(token_ca.now)
                .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False).build())
        path = tmp_path / f"{number}.crl"
        path.write_bytes(issuer.sign(builder).public_bytes(serialization.Encoding.PEM))
        return path

    empty, revoking = crl(1, []), crl(2, [leaf.serial_number])
    for path in (empty, revoking):
        done = run_tool("openssl", "crl", "-in", path, "-CAfile", token_ca.chain, "-noout")
        assert done.returncode == 0 and "verify OK" in done.stdout + done.stderr, done.stdout + done.stderr
    done = run_tool("openssl", "verify", "-crl_check", "-CAfile", token_ca.chain, "-CRLfile", empty, token_ca.leaf)
    assert done.returncode == 0, done.stdout + done.stderr
    done = run_tool("openssl", "verify", "-crl_check", "-CAfile", token_ca.chain, "-CRLfile", revoking, token_ca.leaf)
    assert done.returncode != 0 and "certificate revoked" in done.stdout + done.stderr
    # Negative control: the CRL checked against a CA of the same name with another key.
    fake = pem_file(tmp_path / "fake.pem", impostor(issuer.cert, token_ca.now))
    done = run_tool("openssl", "crl", "-in", revoking, "-CAfile", fake, "-noout")
    # (openssl 3.0 `crl` exits 0 either way; its verdict is the text)
    assert "verify failure" in done.stdout + done.stderr and "verify OK" not in done.stdout + done.stderr


def test_ocsp_response_signed_in_the_token_verifies_with_openssl(token_ca: TokenCA, tmp_path: Path) -> None:
    issuer = token_ca.issuer()
    leaf = x509.load_pem_x509_certificate(token_ca.leaf.read_bytes())
    builder = (ocsp.OCSPResponseBuilder()
               .add_response(cert=leaf, issuer=issuer.cert, algorithm=hashes.SHA1(),
                             cert_status=ocsp.OCSPCertStatus.REVOKED, this_update=token_ca.now - timedelta(minutes=1),
                             next_update=token_ca.now + timedelta(hours=12), revocation_time=token_ca.now,
                             revocation_reason=x509.ReasonFlags.key_compromise)
               .responder_id(ocsp.OCSPResponderEncoding.HASH, issuer.cert))
    response = issuer.sign(builder)
    der = response.public_bytes(serialization.Encoding.DER)
    (tmp_path / "resp.der").write_bytes(der)
    issuing_pem = pem_file(tmp_path / "issuing.pem", issuer.cert)
    done = run_tool("openssl", "ocsp", "-respin", tmp_path / "resp.der", "-issuer", issuing_pem, "-cert",
                    token_ca.leaf, "-CAfile", token_ca.chain)
    assert done.returncode == 0 and "Response verify OK" in done.stdout + done.stderr, done.stdout + done.stderr
    assert ": revoked" in done.stdout and "Reason: keyCompromise" in done.stdout
    # Negative control: one flipped bit at the end of the signature.
    tampered = bytearray(der)
    tampered[-1] ^= 1
    (tmp_path / "bad.der").write_bytes(bytes(tampered))
    done = run_tool("openssl", "ocsp", "-respin", tmp_path / "bad.der", "-issuer", issuing_pem, "-cert",
                    token_ca.leaf, "-CAfile", token_ca.chain)
    assert "Response Verify Failure" in done.stdout + done.stderr


def test_cross_certificate_signed_by_a_token_root(token_ca: TokenCA, tmp_path: Path) -> None:
    """Rolling over to a new root: the token root cross-signs it, and leaves under the new root chain to the old."""
    from privca.issuance.builder import ca_builder, validity

    root = token_ca.issuer("root")
    new_key = ec.generate_private_key(ec.SECP256R1())
    new_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "HSM Test Root 2")])
    not_before, not_after = validity(token_ca.now, 365)
    new_root = ca_builder(new_name, new_name, new_key.public_key(), x509.random_serial_number(), not_before,
                          not_after, None, None).sign(new_key, hashes.SHA256())
    root_ski = root.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    cross = root.sign(ca_builder(new_name, root.cert.subject, new_key.public_key(), x509.random_serial_number(),
                                 not_before, not_after, root_ski, None))
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    new_ski = new_root.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    leaf = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "expc")]))
            .issuer_name(new_name).public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(not_before).not_valid_after(not_before + timedelta(days=30))
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(new_ski), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .sign(new_key, hashes.SHA256()))
    old_root = pem_file(tmp_path / "old-root.pem", root.cert)
    leaf_pem = pem_file(tmp_path / "leaf.pem", leaf)
    done = run_tool("openssl", "verify", "-CAfile", old_root, "-untrusted", pem_file(tmp_path / "cross.pem", cross),
                    leaf_pem)
    assert done.returncode == 0, done.stdout + done.stderr
    # Negative control: without the cross-certificate the old root does not reach the leaf.
    done = run_tool("openssl", "verify", "-CAfile", old_root, leaf_pem)
    assert done.returncode != 0


def test_signing_threads_share_one_locked_session(token_ca: TokenCA) -> None:
    from privca.keys.hsm import _sessions

    key = token_ca.issuer().key
    failures: list[BaseException] = []
    verified = []

    def work(worker: int) -> None:
        try:
            for n in range(10):
                data = f"{worker}:{n}".encode()
                if isinstance(key, rsa.RSAPrivateKey):
                    key.public_key().verify(key.sign(data, padding.PKCS1v15(), hashes.SHA256()), data,
                                            padding.PKCS1v15(), hashes.SHA256())
                else:
                    key.public_key().verify(key.sign(data, ec.ECDSA(hashes.SHA256())), data, ec.ECDSA(hashes.SHA256()))
                verified.append(data)
        except BaseException as exc:  # noqa: BLE001 (collected and reported below)
            failures.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures and len(verified) == 60
    assert [key for key in _sessions if key[1] == TOKEN] == [(os.path.realpath(MODULE), TOKEN)]


# --- choosing keys, modules and PINs --------------------------------------------------------------------------

def test_init_with_existing_keys_made_by_another_tool(softhsm: SoftHSM, tmp_path: Path) -> None:
    pkcs11_tool("--keypairgen", "--key-type", "EC:secp384r1", "--label", "uc root key", "--id", "a1")
    pkcs11_tool("--keypairgen", "--key-type", "rsa:3072", "--label", "uc issuing key", "--id", "a2")
    store = tmp_path / "store"
    labels = ["--root-key-label", "uc root key", "--issuing-key-label", "uc issuing key"]
    # Negative control first: a key type that contradicts the keys is refused and creates nothing.
    done = privca_subprocess(*init_args(store, "ec:secp256r1", "--pkcs11-module", MODULE, *labels), env=softhsm.env)
    assert done.returncode == 2 and "--key-type ec:secp256r1: key 'uc root key'" in done.stderr
    assert not store.exists()
    done = privca_subprocess(*init_args(store, None, "--pkcs11-module", MODULE, *labels), env=softhsm.env)
    assert done.returncode == 0, done.stderr
    rows = ca_rows(store)
    assert [(row["key_type"], object_label(row["key_ref"])) for row in rows] == [
        ("ec:secp384r1", "uc root key"), ("rsa:3072", "uc issuing key")]
    # The CA certificates carry the very keys pkcs11-tool made (read back with pkcs11-tool: its EC export is
    # broken with OpenSSL 3, so the EC point comes from its listing).
    root_cert, issuing_cert = (x509.load_pem_x509_certificate(row["pem"].encode()) for row in rows)
    listed = token_objects()[("Public Key", "uc root key")]
    point = bytes.fromhex(re.search(r"EC_POINT:\s+([0-9a-f]+)", listed).group(1))  # type: ignore[union-attr]
    assert point[2:] == root_cert.public_key().public_bytes(serialization.Encoding.X962,
                                                            serialization.PublicFormat.UncompressedPoint)
    pkcs11_tool("--read-object", "--type", "pubkey", "--label", "uc issuing key", "-o", tmp_path / "pub.der")
    assert issuing_cert.public_key() == serialization.load_der_public_key((tmp_path / "pub.der").read_bytes())
    done = privca_subprocess("issue", write_csr(tmp_path / "e.csr"), "--store", store, env=softhsm.env)
    assert done.returncode == 0, done.stderr
    done = run_tool("openssl", "verify", "-purpose", "sslclient", "-CAfile", tmp_path / "e.chain.pem", tmp_path / "e.pem")
    assert done.returncode == 0, done.stdout + done.stderr


def test_existing_keys_unfit_for_a_ca_are_refused(softhsm: SoftHSM, tmp_path: Path) -> None:
    import pkcs11

    from privca.authority.ca import init_ca
    from privca.errors import KeyMaterialError
    from privca.keys.hsm import open_token
    from privca.keys.material import Passphrase
    from privca.keys.keystore import CASecrets, TokenChoice
    from privca.ledger.store import Store

    pin = Passphrase(PIN.encode())
    session = open_token(MODULE, LAB_TOKEN, lambda: pin).session
    sign_only = pkcs11.MechanismFlag.SIGN | pkcs11.MechanismFlag.VERIFY
    for label, bits in (("small", 2048), ("half a", 3072), ("half b", 3072)):
        session.generate_keypair(pkcs11.KeyType.RSA, bits, label=label, store=True, capabilities=sign_only)
    token = TokenChoice(MODULE, LAB_TOKEN)

    def init(store: Path, root_label: str) -> None:
        init_ca(Store(store), CASecrets(pin=pin), root_cn="R", issuing_cn="I", token=token,
                root_key_label=root_label, issuing_key_label="half b", now=datetime.now(timezone.utc))

    # Control: two genuine pairs make a CA.
    init(tmp_path / "control", "half a")
    assert [row["key_type"] for row in ca_rows(tmp_path / "control")] == ["rsa:3072", "rsa:3072"]
    # Now one label on the private half of one pair and the public half of another.
    session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="half a")[pkcs11.Attribute.LABEL] = "mixed"
    session.get_key(object_class=pkcs11.ObjectClass.PUBLIC_KEY, label="half b")[pkcs11.Attribute.LABEL] = "mixed"
    cases = [("small", "is rsa:2048; a CA key must be one of"),
             ("mixed", "the private and public keys labelled 'mixed' are not one key pair"),
             ("absent", "no private key labelled 'absent'")]
    for label, message in cases:
        with pytest.raises(KeyMaterialError, match=re.escape(message)):
            init(tmp_path / label, label)
        assert not (tmp_path / label).exists()


def test_a_failed_init_removes_the_keys_it_generated(softhsm: SoftHSM, tmp_path: Path) -> None:
    from privca.authority.ca import init_ca
    from privca.errors import StoreError
    from privca.keys.material import Passphrase
    from privca.keys.keystore import CASecrets, TokenChoice
    from privca.ledger.store import Store

    before = token_objects(LAB_TOKEN)
    in_the_way = tmp_path / "store"
    in_the_way.write_text("not a folder")
    with pytest.raises(StoreError, match="exists and is not a folder"):
        init_ca(Store(in_the_way), CASecrets(pin=Passphrase(PIN.encode())), root_cn="R", issuing_cn="I",
                key_type="ec:secp256r1", token=TokenChoice(MODULE, LAB_TOKEN), now=datetime.now(timezone.utc))
    assert token_objects(LAB_TOKEN) == before
    # Control: the same call on a usable folder leaves its two key pairs in the token.
    init_ca(Store(tmp_path / "good"), CASecrets(pin=Passphrase(PIN.encode())), root_cn="R", issuing_cn="I",
            key_type="ec:secp256r1", token=TokenChoice(MODULE, LAB_TOKEN), now=datetime.now(timezone.utc))
    assert len(token_objects(LAB_TOKEN)) == len(before) + 4


@rsa_only
def test_wrong_pin_is_one_clear_error_and_changes_nothing(token_ca: TokenCA, softhsm: SoftHSM, tmp_path: Path) -> None:
    csr = write_csr(tmp_path / "n.csr")
    before, objects = snapshot(token_ca.store, tmp_path), token_objects()
    wrong = {**softhsm.env, "PRIVCA_PKCS11_PIN": "0000-wrong"}
    done = privca_subprocess("issue", csr, "--store", token_ca.store, env=wrong)
    assert done.returncode == 4
    assert done.stderr == (f"Error: token '{TOKEN}': the PIN was not accepted; privca does not retry because HSMs "
                           "lock the user after a few failures; check the PIN before trying again\n")
    assert "0000-wrong" not in done.stdout + done.stderr
    done = privca_subprocess(*init_args(tmp_path / "new", "ec:secp256r1", "--pkcs11-module", MODULE), env=wrong)
    assert done.returncode == 4 and done.stderr.count("\n") == 1 and "PIN was not accepted" in done.stderr
    assert snapshot(token_ca.store, tmp_path) == before and token_objects() == objects
    # Control: the right PIN issues.
    done = privca_subprocess("issue", csr, "--store", token_ca.store, env=softhsm.env)
    assert done.returncode == 0, done.stderr


def test_a_wrong_pin_is_asked_for_and_tried_once(softhsm: SoftHSM) -> None:
    from privca.errors import KeyMaterialError
    from privca.keys.hsm import open_token
    from privca.keys.material import Passphrase

    asked = []

    def pin(value: str) -> Any:
        asked.append(value)
        return Passphrase(value.encode())

    with pytest.raises(KeyMaterialError, match="PIN was not accepted"):
        open_token(MODULE, PIN_TOKEN, lambda: pin("0000-wrong"))
    assert asked == ["0000-wrong"]
    assert open_token(MODULE, PIN_TOKEN, lambda: pin(PIN)).token_label == PIN_TOKEN
    assert asked == ["0000-wrong", PIN]


@rsa_only
def test_missing_token_is_one_clear_error_and_changes_nothing(token_ca: TokenCA, softhsm: SoftHSM,
                                                              tmp_path: Path) -> None:
    # The token "unplugged": SoftHSM pointed at an empty token folder.
    (tmp_path / "empty").mkdir()
    conf = tmp_path / "empty.conf"
    conf.write_text(f"directories.tokendir = {tmp_path / 'empty'}\nobjectstore.backend = file\n")
    csr = write_csr(tmp_path / "n.csr")
    before = snapshot(token_ca.store, tmp_path)
    done = privca_subprocess("issue", csr, "--store", token_ca.store, env={**softhsm.env, "SOFTHSM2_CONF": str(conf)})
    assert done.returncode == 4
    assert done.stderr == (f"Error: token '{TOKEN}': not found through {MODULE} (tokens there: none); check "
                           "--token-label, that the device is connected, and for SoftHSM2 the SOFTHSM2_CONF variable\n")
    assert snapshot(token_ca.store, tmp_path) == before
    # A token label that is not there: the message lists the ones that are; no store is created.
    store = tmp_path / "new"
    done = privca_subprocess("init", "--store", store, "--root-cn", "R", "--issuing-cn", "I", "--pkcs11-module",
                             MODULE, "--token-label", "no such token", "--second-root", env=softhsm.env)
    assert done.returncode == 4 and done.stderr.count("\n") == 1
    assert f"token 'no such token': not found through {MODULE} (tokens there: " in done.stderr
    assert f"'{TOKEN}'" in done.stderr and "Traceback" not in done.stderr
    assert not store.exists()


def test_module_path_is_recorded_and_can_be_overridden(softhsm: SoftHSM, tmp_path: Path) -> None:
    link = tmp_path / "vendor" / "libpkcs11.so"
    link.parent.mkdir()
    link.symlink_to(MODULE)
    store = tmp_path / "store"
    done = privca_subprocess(*init_args(store, "ec:secp256r1", "--pkcs11-module", link), env=softhsm.env)
    assert done.returncode == 0, done.stderr
    assert all(row["key_ref"].endswith(f"?module-path={link}") for row in ca_rows(store))
    link.unlink()  # the vendor client moved its library
    csrs = tmp_path / "csrs"
    csrs.mkdir()
    write_csr(csrs / "a.csr")
    before = snapshot(store, csrs)
    done = privca_subprocess("issue", csrs / "a.csr", "--store", store, env=softhsm.env)
    assert done.returncode == 4
    assert done.stderr == (f"Error: PKCS#11 module {link}: no such file; check --pkcs11-module or "
                           "PRIVCA_PKCS11_MODULE\n")
    assert snapshot(store, csrs) == before
    done = privca_subprocess("issue", csrs / "a.csr", "--store", store, "--pkcs11-module", MODULE, env=softhsm.env)
    assert done.returncode == 0, done.stderr
    done = privca_subprocess("issue", write_csr(csrs / "b.csr"), "--store", store,
                             env={**softhsm.env, "PRIVCA_PKCS11_MODULE": MODULE})
    assert done.returncode == 0, done.stderr


@rsa_only
def test_pin_comes_from_a_file_or_the_environment_never_argv(token_ca: TokenCA, softhsm: SoftHSM,
                                                             tmp_path: Path) -> None:
    no_pin = {**softhsm.env, "PRIVCA_PKCS11_PIN": ""}
    done = privca_subprocess("issue", write_csr(tmp_path / "a.csr"), "--store", token_ca.store, env=no_pin)
    assert done.returncode == 4
    assert done.stderr == ("Error: token PIN: not given; set PRIVCA_PKCS11_PIN or use --pin-file when there is no "
                           "terminal\n")
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)  # privca refuses a PIN file others can read
    done = privca_subprocess("issue", tmp_path / "a.csr", "--store", token_ca.store, "--pin-file", pin_file, env=no_pin)
    assert done.returncode == 0, done.stderr
    done = privca_subprocess("issue", write_csr(tmp_path / "b.csr"), "--store", token_ca.store, "--pin", PIN,
                             env=no_pin)
    assert done.returncode == 2 and "No such option: --pin" in done.stderr


def test_token_options_that_do_not_fit_together(cli: Any, tmp_path: Path) -> None:
    store = tmp_path / "store"
    base = ["init", "--store", store, "--root-cn", "R", "--issuing-cn", "I"]
    result = cli(*base, "--pkcs11-module", MODULE)
    assert result.exit_code == 2
    assert result.stderr == ("Error: --pkcs11-module, --root-key-label and --issuing-key-label: need "
                             "--token-label\n")
    (tmp_path / "pass").write_text("a long enough passphrase\n")
    result = cli(*base, "--pkcs11-module", MODULE, "--token-label", TOKEN, "--passphrase-file", tmp_path / "pass")
    assert result.exit_code == 2 and "--passphrase-file: not used with --token-label" in result.stderr
    assert not store.exists()


# --- the key backends side by side ----------------------------------------------------------------------------

def test_each_backend_asks_only_for_its_own_secret(token_ca: TokenCA, store: Any, passphrase: Any) -> None:
    from privca.authority.ca import load_issuer
    from privca.keys.material import Passphrase
    from privca.keys.keystore import CASecrets
    from privca.ledger.store import Store

    def never() -> Passphrase:
        raise AssertionError("asked for a secret this key does not need")

    file_issuer = load_issuer(store, active_ca(store.ledger, "issuing"), CASecrets(passphrase=passphrase, pin=never))
    assert isinstance(file_issuer.key, rsa.RSAPrivateKey) and file_issuer.ca.key_ref == "keys/issuing-1.key.pem"
    # Callers that only know key files still pass the bare passphrase.
    assert load_issuer(store, active_ca(store.ledger, "issuing"), passphrase).cert == file_issuer.cert
    token_store = Store(token_ca.store)
    try:
        token_issuer = load_issuer(token_store, active_ca(token_store.ledger, "issuing"),
                                   CASecrets(passphrase=never, pin=Passphrase(PIN.encode())))
    finally:
        token_store.close()
    assert token_issuer.cert == token_ca.chain_certs[0]


def test_key_uris_round_trip_odd_labels() -> None:
    from privca.errors import KeyMaterialError
    from privca.keys.hsm import TokenKeyRef

    ref = TokenKeyRef("/opt/vendor lib/libcknfast.so", "UC CA; 2026=prod", "root?1 & more/%")
    uri = ref.uri()
    assert uri.startswith("pkcs11:token=UC%20CA%3B%202026=prod;object=root%3F1%20%26%20more%2F%25;type=private?")
    assert TokenKeyRef.parse(uri) == ref
    with pytest.raises(KeyMaterialError, match="needs token= and object="):
        TokenKeyRef.parse("pkcs11:object=x")


# --- the whole life of a token-held CA, through the command line ----------------------------------------------


def _wait_for_port(proc: Any) -> int:
    """The port `privca serve --port 0` prints once it listens."""
    for _ in range(50):
        line = proc.stdout.readline()
        found = re.search(r"127\.0\.0\.1:(\d+)", line or "")
        if found:
            return int(found.group(1))
    raise AssertionError("privca serve did not say where it listens")


def test_full_flow_with_keys_in_the_token(softhsm: SoftHSM, tmp_path: Path) -> None:
    """init, issue, revoke, CRL, OCSP and rotate intermediate, with every CA key in SoftHSM2 and every artefact
    checked by openssl; no private key material ever lands in the store."""
    import json
    import subprocess
    import sys

    store, env = tmp_path / "store", softhsm.env

    def privca(*args: str | Path) -> Any:
        done = privca_subprocess(*args, "--store", store, env=env)
        assert done.returncode == 0, done.stderr
        return done

    done = privca_subprocess(*init_args(store, "ec:secp256r1", "--pkcs11-module", MODULE), env=env)
    assert done.returncode == 0, done.stderr
    good = privca("issue", write_csr(tmp_path / "good.csr"), "--out", tmp_path / "out", "--json")
    bad = privca("issue", write_csr(tmp_path / "bad.csr"), "--out", tmp_path / "out", "--json")

    good_serial, bad_serial = json.loads(good.stdout)["certificates"][0]["serial"], json.loads(bad.stdout)["certificates"][0]["serial"]
    chain = tmp_path / "out" / "good.chain.pem"
    for purpose in ("sslserver", "sslclient"):
        assert run_tool("openssl", "verify", "-purpose", purpose, "-CAfile", chain,
                        tmp_path / "out" / "good.pem").returncode == 0

    privca("revoke", bad_serial, "--reason", "keyCompromise")
    privca("crl", "--out", tmp_path / "crl")
    crl = tmp_path / "crl" / "issuing-1.crl.pem"
    issuing_pem = pem_file(tmp_path / "issuing.pem", x509.load_pem_x509_certificates(chain.read_bytes())[0])
    checked = run_tool("openssl", "crl", "-in", crl, "-CAfile", issuing_pem, "-noout")
    assert "verify OK" in checked.stdout + checked.stderr
    revoked = run_tool("openssl", "verify", "-crl_check", "-CRLfile", crl, "-CAfile", chain, tmp_path / "out" / "bad.pem")
    assert revoked.returncode != 0 and "certificate revoked" in revoked.stdout + revoked.stderr
    ok = run_tool("openssl", "verify", "-crl_check", "-CRLfile", crl, "-CAfile", chain, tmp_path / "out" / "good.pem")
    assert ok.returncode == 0, ok.stdout + ok.stderr

    server = subprocess.Popen([sys.executable, "-m", "privca", "serve", "--port", "0", "--store", str(store)],
                              env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        port = _wait_for_port(server)
        for name, expected in ((good_serial, "good"), (bad_serial, "revoked")):
            leaf = tmp_path / "out" / ("good.pem" if name == good_serial else "bad.pem")
            answer = run_tool("openssl", "ocsp", "-url", f"http://127.0.0.1:{port}/ocsp", "-issuer", issuing_pem,
                              "-cert", leaf, "-CAfile", chain, timeout=30)
            text = answer.stdout + answer.stderr
            assert "Response verify OK" in text and f"{leaf}: {expected}" in text, text
    finally:
        server.terminate()
        server.communicate(timeout=10)  # waits, and closes the pipe

    privca("rotate", "intermediate")
    rows = ca_rows(store)
    assert [r["name"] for r in rows] == ["root-1", "issuing-1", "issuing-2"]
    assert all(r["key_ref"].startswith("pkcs11:") for r in rows)  # the new generation's key is in the token too
    privca("issue", write_csr(tmp_path / "after.csr"), "--out", tmp_path / "after")
    new_chain = tmp_path / "after" / "after.chain.pem"
    new_issuer = x509.load_pem_x509_certificates(new_chain.read_bytes())[0]
    assert new_issuer.subject == x509.load_pem_x509_certificate(rows[2]["pem"].encode()).subject
    assert new_issuer.subject != x509.load_pem_x509_certificate(issuing_pem.read_bytes()).subject
    assert run_tool("openssl", "verify", "-purpose", "sslclient", "-CAfile", new_chain,
                    tmp_path / "after" / "after.pem").returncode == 0
    # The old leaf still verifies against its own (retired) issuing CA.
    assert run_tool("openssl", "verify", "-CAfile", chain, tmp_path / "out" / "good.pem").returncode == 0
    for path in store.rglob("*"):
        if path.is_file():
            assert b"PRIVATE KEY" not in path.read_bytes(), path
    assert not any((store / "keys").iterdir())


# --- privca verify with keys in the token ---------------------------------------------------------------------

@rsa_only
def test_verify_checks_token_keys_with_the_pin_and_never_asks_for_a_passphrase(
        token_ca: TokenCA, softhsm: SoftHSM, tmp_path: Path) -> None:
    import json

    store = tmp_path / "store"
    shutil.copytree(token_ca.store, store)
    # The PIN from the environment; PRIVCA_PASSPHRASE is empty, so asking for a passphrase would fail.
    done = privca_subprocess("verify", "--store", store, "--json", env=softhsm.env)
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(done.stdout)
    assert report["ok"] and report["checked"]["keys"] == 2 and "keys" not in report["skipped"]
    # The PIN from a file.
    no_pin = {**softhsm.env, "PRIVCA_PKCS11_PIN": ""}
    pin_file = tmp_path / "pin"
    pin_file.write_text(PIN + "\n")
    pin_file.chmod(0o600)  # privca refuses a PIN file others can read
    done = privca_subprocess("verify", "--store", store, "--pin-file", pin_file, env=no_pin)
    assert done.returncode == 0 and "OK: the store is whole" in done.stdout, done.stderr
    # No PIN, a wrong PIN: one Error line each (the wrong one tried once), not a finding about the store.
    done = privca_subprocess("verify", "--store", store, env=no_pin)
    assert done.returncode == 4 and done.stderr == (
        "Error: token PIN: not given; set PRIVCA_PKCS11_PIN or use --pin-file when there is no terminal; or check "
        "everything but the keys with --skip keys\n")
    done = privca_subprocess("verify", "--store", store, env={**softhsm.env, "PRIVCA_PKCS11_PIN": "0000-wrong"})
    assert done.returncode == 4 and done.stderr.count("\n") == 1 and "PIN was not accepted" in done.stderr
    assert "0000-wrong" not in done.stdout + done.stderr
    assert privca_subprocess("verify", "--store", store, "--skip", "keys", env=no_pin).returncode == 0

    # The module moved: --pkcs11-module finds it again. (The move is simulated by editing the key references in
    # the ledger, which the rows check rightly names: it is left out here.)
    conn = sqlite3.connect(store / "privca.db")
    rows = conn.execute("SELECT id, key_ref FROM cas").fetchall()
    with conn:
        for ca_id, ref in rows:
            conn.execute("UPDATE cas SET key_ref = ? WHERE id = ?",
                         (re.sub(r"module-path=[^;?]*", "module-path=/nonexistent/libpkcs11.so", ref), ca_id))
    done = privca_subprocess("verify", "--store", store, "--skip", "rows", env=softhsm.env)
    assert done.returncode == 4 and "PKCS#11 module /nonexistent/libpkcs11.so: no such file" in done.stderr
    done = privca_subprocess("verify", "--store", store, "--skip", "rows", "--pkcs11-module", MODULE, env=softhsm.env)
    assert done.returncode == 0, done.stdout + done.stderr

    # Negative control: the issuing CA's row pointed at the root's key in the token is found (the key is really
    # opened and compared, not taken on trust).
    root_ref = conn.execute("SELECT key_ref FROM cas WHERE role = 'root'").fetchone()[0]
    with conn:
        conn.execute("UPDATE cas SET key_ref = ? WHERE role = 'issuing'", (root_ref,))
    conn.close()
    done = privca_subprocess("verify", "--store", store, "--json", "--skip", "rows", "--pkcs11-module", MODULE,
                             env=softhsm.env)
    assert done.returncode == 13
    assert [(f["check"], f["subject"]) for f in json.loads(done.stdout)["findings"]] == [("keys", "CA issuing-1")]
    assert "does not match the CA certificate" in json.loads(done.stdout)["findings"][0]["problem"]

"""CA rotation: a new issuing CA generation, a root rollover with cross-certificates, what stays trusted, and the
plan. Chains are checked with openssl verify and pyca's verifier, CA certificates with pkilint."""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.verification import PolicyBuilder, Store as TrustStore, VerificationError

from conftest import NOW, PASSPHRASE, build_csr, ledger_counts, run_tool, snapshot, venv_tool
from privca.ledger.cas import active, all_cas, needed_until, trusted
from privca.ledger.crosses import all_crosses
from privca.ledger.events import all_events
from privca.ledger.records import parse_time

# Check chains an hour after the pinned clock, well inside every certificate's validity.
AT = NOW + timedelta(hours=1)
ATTIME = str(int(AT.timestamp()))


@pytest.fixture(autouse=True)
def _pinned_cli_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    """The commands read the clock once, in the CLI; pin it so dates match the fixtures."""
    monkeypatch.setattr("privca.cli.rotate_cmd.now", lambda: NOW)


def openssl_verify(tmp: Path, cert_pem: str, anchors: list[str], untrusted: list[str] = (),  # type: ignore[assignment]
                   purpose: str = "sslserver") -> Any:
    """``openssl verify`` with exactly ``anchors`` as trust anchors and ``untrusted`` as extra chain input."""
    tmp.mkdir(parents=True, exist_ok=True)
    index = len(list(tmp.iterdir()))
    ca_file, leaf = tmp / f"anchors{index}.pem", tmp / f"leaf{index}.pem"
    ca_file.write_text("".join(anchors))
    leaf.write_text(cert_pem)
    args = ["openssl", "verify", "-attime", ATTIME, "-purpose", purpose, "-CAfile", ca_file]
    if untrusted:
        chain = tmp / f"untrusted{index}.pem"
        chain.write_text("".join(untrusted))
        args += ["-untrusted", chain]
    return run_tool(*args, leaf)


def ca_pem(store_path: Path, name: str) -> str:
    conn = sqlite3.connect(store_path / "privca.db")
    try:
        return conn.execute("SELECT pem FROM cas WHERE name = ?", (name,)).fetchone()[0]
    finally:
        conn.close()


def issue_leaf(store: Any, tmp: Path, name: str, passphrase: Any, key: Any = None, **csr: Any) -> dict[str, Any]:
    from cryptography.hazmat.primitives.serialization import Encoding

    from privca.authority.signer import issue

    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / f"{name}.csr"
    path.write_bytes(build_csr(key or ec.generate_private_key(ec.SECP256R1()), **csr).public_bytes(Encoding.PEM))
    return issue(store, [path], passphrase, now=NOW)[0].to_json()


def pyca_verifies(leaf_pem: str, anchors: list[str], intermediates: list[str]) -> bool:
    load = lambda pem: x509.load_pem_x509_certificate(pem.encode())  # noqa: E731
    verifier = (PolicyBuilder().store(TrustStore([load(pem) for pem in anchors])).time(AT)
                .build_server_verifier(x509.DNSName("expc1.example.com")))
    try:
        verifier.verify(load(leaf_pem), [load(pem) for pem in intermediates])
    except VerificationError:
        return False
    return True


# --- root rollover --------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def rolled(_template_store: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A store with a leaf from the first hierarchy, then a root rollover, then a leaf from the new hierarchy."""
    from privca.keys.material import Passphrase
    from privca.authority.rotation import rotate_root
    from privca.ledger.store import Store

    folder = tmp_path_factory.mktemp("rolled")
    shutil.copytree(_template_store, folder / "store")
    store = Store(folder / "store")
    secret = Passphrase(PASSPHRASE.encode())
    old_leaf = issue_leaf(store, folder / "old", "expc-old", secret)
    result = rotate_root(store, secret, now=NOW)
    new_leaf = issue_leaf(store, folder / "new", "expc-new", secret)
    crosses = {(cross.issuer_ca_id, cross.subject_ca_id): cross.pem for cross in all_crosses(store.ledger)}
    yield {"store": store, "path": folder / "store", "result": result, "old_leaf": old_leaf, "new_leaf": new_leaf,
           "root1": ca_pem(folder / "store", "root-1"), "issuing1": ca_pem(folder / "store", "issuing-1"),
           "root2": ca_pem(folder / "store", "root-2"), "issuing2": ca_pem(folder / "store", "issuing-2"),
           "new_by_old": crosses[(1, 3)], "old_by_new": crosses[(3, 1)]}
    store.close()


def leaf_pem(record: dict[str, Any]) -> str:
    return Path(record["cert_path"]).read_text()


@pytest.mark.parametrize("purpose", ["sslserver", "sslclient"])
def test_new_leaf_validates_for_a_peer_that_trusts_only_the_old_root(rolled: dict[str, Any], tmp_path: Path,
                                                                     purpose: str) -> None:
    leaf = leaf_pem(rolled["new_leaf"])
    ok = openssl_verify(tmp_path, leaf, [rolled["root1"]], [rolled["new_by_old"], rolled["issuing2"]], purpose)
    assert ok.returncode == 0 and ": OK" in ok.stdout, ok.stdout + ok.stderr
    # Negative control: without the cross-certificate the old root cannot reach the new hierarchy.
    bad = openssl_verify(tmp_path, leaf, [rolled["root1"]], [rolled["issuing2"]], purpose)
    assert bad.returncode != 0
    assert "unable to get local issuer certificate" in bad.stdout + bad.stderr


@pytest.mark.parametrize("purpose", ["sslserver", "sslclient"])
def test_old_leaf_validates_for_a_peer_that_trusts_only_the_new_root(rolled: dict[str, Any], tmp_path: Path,
                                                                     purpose: str) -> None:
    leaf = leaf_pem(rolled["old_leaf"])
    ok = openssl_verify(tmp_path, leaf, [rolled["root2"]], [rolled["issuing1"], rolled["old_by_new"]], purpose)
    assert ok.returncode == 0 and ": OK" in ok.stdout, ok.stdout + ok.stderr
    bad = openssl_verify(tmp_path, leaf, [rolled["root2"]], [rolled["issuing1"]], purpose)
    assert bad.returncode != 0
    assert "unable to get local issuer certificate" in bad.stdout + bad.stderr


def test_cross_certificates_work_with_pycas_verifier(rolled: dict[str, Any]) -> None:
    new, old = leaf_pem(rolled["new_leaf"]), leaf_pem(rolled["old_leaf"])
    assert pyca_verifies(new, [rolled["root1"]], [rolled["issuing2"], rolled["new_by_old"]])
    assert pyca_verifies(old, [rolled["root2"]], [rolled["issuing1"], rolled["old_by_new"]])
    assert not pyca_verifies(new, [rolled["root1"]], [rolled["issuing2"]])
    assert not pyca_verifies(old, [rolled["root2"]], [rolled["issuing1"]])


def test_each_hierarchy_validates_on_its_own_root(rolled: dict[str, Any], tmp_path: Path) -> None:
    new_leaf = rolled["new_leaf"]
    assert openssl_verify(tmp_path, leaf_pem(new_leaf), [rolled["root2"]], [rolled["issuing2"]]).returncode == 0
    assert openssl_verify(tmp_path, leaf_pem(rolled["old_leaf"]), [rolled["root1"]],
                          [rolled["issuing1"]]).returncode == 0
    # The chain file written with a new leaf is the new issuing CA and the new root.
    assert Path(new_leaf["chain_path"]).read_text() == rolled["issuing2"] + rolled["root2"]


def test_rollover_gives_each_generation_a_new_key_and_a_distinct_name(rolled: dict[str, Any]) -> None:
    load = lambda pem: x509.load_pem_x509_certificate(pem.encode())  # noqa: E731
    root1, root2, issuing1, issuing2 = (load(rolled[name]) for name in ("root1", "root2", "issuing1", "issuing2"))
    cn = lambda cert: cert.subject.get_attributes_for_oid(x509.oid.NameOID.COMMON_NAME)[0].value  # noqa: E731
    assert [cn(c) for c in (root1, root2, issuing1, issuing2)] == [
        "Test UC Root CA", "Test UC Root CA G2", "Test UC Issuing CA 1", "Test UC Issuing CA 2"]
    assert root2.public_key() != root1.public_key() and issuing2.public_key() != issuing1.public_key()
    assert issuing2.issuer == root2.subject and root2.issuer == root2.subject
    new_by_old, old_by_new = load(rolled["new_by_old"]), load(rolled["old_by_new"])
    # "New with old" carries the new root's name and key under the old root, and the reverse.
    assert (new_by_old.subject, new_by_old.issuer, new_by_old.public_key()) == (root2.subject, root1.subject,
                                                                                root2.public_key())
    assert (old_by_new.subject, old_by_new.issuer, old_by_new.public_key()) == (root1.subject, root2.subject,
                                                                                root1.public_key())
    assert new_by_old.not_valid_after_utc <= root1.not_valid_after_utc
    for cross in (new_by_old, old_by_new):
        assert cross.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    store_path = rolled["path"]
    for name in ("root-2", "issuing-2"):
        key_file = store_path / "keys" / f"{name}.key.pem"
        assert key_file.stat().st_mode & 0o777 == 0o600
        assert key_file.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")


def test_cross_certificates_pass_pkilint(rolled: dict[str, Any], tmp_path: Path) -> None:
    files = {}
    for name in ("root1", "root2", "issuing2", "new_by_old", "old_by_new"):
        files[name] = tmp_path / f"{name}.pem"
        files[name].write_text(rolled[name])
    for name in ("new_by_old", "old_by_new", "root2", "issuing2"):
        found = run_tool(venv_tool("lint_pkix_cert"), "lint", "-s", "ERROR", files[name])
        assert found.stdout.strip() == "", f"{name}: {found.stdout}"
    for issuer, subject in (("root1", "new_by_old"), ("root2", "old_by_new"), ("root2", "issuing2")):
        found = run_tool(venv_tool("lint_pkix_signer_signee_cert_chain"), "lint", "-s", "ERROR", files[issuer],
                         files[subject])
        assert found.stdout.strip() == "", f"{issuer} -> {subject}: {found.stdout}"


def test_rollover_ledger_retires_the_old_generation_and_records_the_cross_certificates(rolled: dict[str, Any]) -> None:
    ledger = rolled["store"].ledger
    cas = {ca.name: ca for ca in all_cas(ledger)}
    assert {name: ca.status for name, ca in cas.items()} == {
        "root-1": "retired", "issuing-1": "retired", "root-2": "active", "issuing-2": "active"}
    assert cas["root-1"].replaced_by == cas["root-2"].id
    assert cas["issuing-1"].replaced_by == cas["issuing-2"].id
    assert cas["issuing-2"].parent_id == cas["root-2"].id
    assert cas["root-2"].crl_url == "http://pki.example.test/crl/root-2.crl"
    assert cas["issuing-2"].ocsp_url == "http://pki.example.test/ocsp"
    # Every generation is still trusted (issuing-1 signed a leaf that is still valid), roots first.
    assert [ca.name for ca in trusted(ledger, NOW)] == ["root-1", "root-2", "issuing-1", "issuing-2"]
    crosses = all_crosses(ledger, NOW)
    assert [(cross.issuer_ca_id, cross.subject_ca_id) for cross in crosses] == [(1, 3), (3, 1)]
    assert all_crosses(ledger, NOW + timedelta(days=36500)) == []
    event = [event for event in all_events(ledger) if event.action == "rotate-root"][-1]
    assert event.details["retired"] == ["root-1", "issuing-1"]
    # The rotation's JSON names the CAs and carries the cross-certificates as records.
    shown = rolled["result"].to_json()
    assert shown["root"]["name"] == "root-2" and shown["issuing"]["parent"] == "root-2"
    assert [(c["signed_by"], c["carries"]) for c in shown["cross_certificates"]] == [("root-1", "root-2"),
                                                                                   ("root-2", "root-1")]


def test_rotate_root_via_cli(store_path: Path, cli: Any, tmp_path: Path) -> None:
    result = cli("rotate", "root", "--store", store_path, "--root-cn", "Test UC Root CA 2027",
                 "--issuing-cn", "Test UC Issuing CA 2027", "--key-type", "ec:secp256r1", "--cross-days", "400",
                 "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["root"]["subject"] == "O=Example Ltd,CN=Test UC Root CA 2027"
    assert data["issuing"]["key_type"] == "ec:secp256r1"
    assert data["retired"] == ["root-1", "issuing-1"]
    ends = {cross["not_after"][:10] for cross in data["cross_certificates"]}
    assert ends == {(NOW + timedelta(days=400)).strftime("%Y-%m-%d")}
    assert all("pem" not in cross for cross in data["cross_certificates"])
    people = cli("rotate", "root", "--store", store_path, "--root-cn", "Test UC Root CA 2028",
                 "--issuing-cn", "Test UC Issuing CA 2028", "--key-type", "ec:secp256r1")
    assert people.exit_code == 0, people.stderr
    assert "New root: O=Example Ltd,CN=Test UC Root CA 2028" in people.stdout and "Cross-certificate" in people.stdout


@pytest.mark.parametrize("args, message", [
    (["--root-cn", "test uc root ca", "--issuing-cn", "X Issuing"], "--root-cn 'test uc root ca': a CA generation "
     "already has this name"),
    (["--root-cn", "New Root", "--issuing-cn", "Test UC Issuing CA 1"], "--issuing-cn 'Test UC Issuing CA 1'"),
    (["--root-cn", "Same", "--issuing-cn", "same"], "--issuing-cn 'same': a CA generation already has this name"),
    (["--root-days", "100", "--issuing-days", "200"], "need 1 <= issuing days < root days"),
    (["--key-type", "rsa:1024"], "key type 'rsa:1024': not supported"),
])
def test_rotate_root_refuses_bad_input_and_changes_nothing(store_path: Path, cli: Any, args: list[str],
                                                           message: str) -> None:
    before = snapshot(store_path)
    result = cli("rotate", "root", "--store", store_path, *args)
    assert result.exit_code == 2
    assert result.stderr.startswith("Error: ") and message in result.stderr
    assert "Traceback" not in result.stderr
    assert snapshot(store_path) == before


def test_rotate_root_with_a_wrong_passphrase_changes_nothing(store_path: Path, cli: Any,
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    before = snapshot(store_path)
    monkeypatch.setenv("PRIVCA_PASSPHRASE", "not the passphrase at all")
    result = cli("rotate", "root", "--store", store_path, "--key-type", "ec:secp256r1")
    assert result.exit_code == 4 and "wrong passphrase" in result.stderr
    assert snapshot(store_path) == before


def test_rotation_failing_in_the_ledger_leaves_no_key_file(store: Any, passphrase: Any, store_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    from privca.errors import LedgerError
    from privca.ledger import crosses
    from privca.authority.rotation import rotate_root

    before = snapshot(store_path)

    def broken(ledger: Any, cross: Any) -> Any:
        raise LedgerError("disk full")

    monkeypatch.setattr(crosses, "insert", broken)
    with pytest.raises(LedgerError):
        rotate_root(store, passphrase, now=NOW, key_type="ec:secp256r1")
    store.close()
    assert snapshot(store_path) == before


# --- issuing CA rotation --------------------------------------------------------------------------------------


def test_rotate_intermediate_new_certificates_come_from_the_new_issuer(store: Any, store_path: Path,
                                                                      passphrase: Any, tmp_path: Path) -> None:
    from privca.authority.rotation import rotate_intermediate

    old = issue_leaf(store, tmp_path / "a", "expc-a", passphrase)
    result = rotate_intermediate(store, passphrase, now=NOW, key_type="ec:secp384r1")
    assert result.retired == ("issuing-1",)
    assert result.issuing.subject == "O=Example Ltd,CN=Test UC Issuing CA 2"
    new = issue_leaf(store, tmp_path / "b", "expc-b", passphrase)

    root, issuing1, issuing2 = (ca_pem(store_path, name) for name in ("root-1", "issuing-1", "issuing-2"))
    new_cert = x509.load_pem_x509_certificate(leaf_pem(new).encode())
    assert new_cert.issuer == x509.load_pem_x509_certificate(issuing2.encode()).subject
    assert Path(new["chain_path"]).read_text() == issuing2 + root
    # The new issuing CA is signed by the same root; the old certificate still verifies on its own chain.
    assert openssl_verify(tmp_path / "v", issuing2, [root]).returncode == 0
    assert openssl_verify(tmp_path / "v", leaf_pem(old), [root], [issuing1]).returncode == 0

    # A bundle of every generation still trusted validates both the old and the new certificate ...
    bundle = [ca.pem for ca in trusted(store.ledger, NOW)]
    assert bundle == [root, issuing1, issuing2]
    for record in (old, new):
        for purpose in ("sslserver", "sslclient"):
            checked = openssl_verify(tmp_path / "v", leaf_pem(record), bundle, purpose=purpose)
            assert checked.returncode == 0, checked.stdout + checked.stderr
    # ... and one without the old intermediate would strand the old certificate (negative control).
    assert openssl_verify(tmp_path / "v", leaf_pem(old), [root, issuing2]).returncode != 0

    cas = {ca.name: ca for ca in all_cas(store.ledger)}
    assert cas["issuing-1"].status == "retired" and cas["issuing-1"].replaced_by == cas["issuing-2"].id
    assert cas["issuing-1"].retired_at == NOW.replace(microsecond=0)
    assert cas["issuing-2"].crl_url == "http://pki.example.test/crl/issuing-2.crl"
    cdp = new_cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    assert cdp[0].full_name[0].value == "http://pki.example.test/crl/issuing-2.crl"


def test_retired_issuing_ca_stays_trusted_until_its_last_certificate_expires(store: Any, passphrase: Any,
                                                                           tmp_path: Path) -> None:
    from privca.revocation.revoke import crl_issuers
    from privca.authority.rotation import rotate_intermediate

    old = issue_leaf(store, tmp_path, "expc", passphrase)
    rotate_intermediate(store, passphrase, now=NOW, key_type="ec:secp256r1")
    ledger = store.ledger
    assert needed_until(ledger)[2] == parse_time(old["not_after"])
    expired = NOW + timedelta(days=400)
    assert [ca.name for ca in trusted(ledger, expired)] == ["root-1", "issuing-2"]
    # The retired CA keeps publishing its CRL exactly as long as peers must trust it.
    assert [ca.name for ca in crl_issuers(ledger, NOW)] == ["root-1", "issuing-1", "issuing-2"]
    assert [ca.name for ca in crl_issuers(ledger, expired)] == ["root-1", "issuing-2"]


def test_retired_issuing_ca_that_signed_nothing_is_not_trusted(store: Any, passphrase: Any) -> None:
    from privca.authority.rotation import rotate_intermediate

    rotate_intermediate(store, passphrase, now=NOW, key_type="ec:secp256r1")
    assert [ca.name for ca in trusted(store.ledger, NOW)] == ["root-1", "issuing-2"]


def test_rotate_intermediate_twice_counts_generations(store_path: Path, cli: Any) -> None:
    first = cli("rotate", "intermediate", "--store", store_path, "--key-type", "ec:secp256r1", "--json")
    second = cli("rotate", "intermediate", "--store", store_path, "--key-type", "ec:secp256r1")
    assert first.exit_code == 0 and second.exit_code == 0, first.stderr + second.stderr
    assert json.loads(first.stdout)["issuing"]["name"] == "issuing-2"
    assert "New issuing CA: O=Example Ltd,CN=Test UC Issuing CA 3  (issuing-3" in second.stdout
    assert "Retired issuing-2" in second.stdout


@pytest.mark.parametrize("args, code, message", [
    (["--issuing-cn", "Test UC Root CA"], 2, "a CA generation already has this name"),
    (["--issuing-cn", "TEST UC ISSUING CA 1"], 2, "a CA generation already has this name"),
    (["--days", "7400"], 2, "--days 7400: would outlive the signing CA"),
    (["--days", "0"], 2, "--days 0: must be between 1 and 36500 days"),
    (["--key-type", "dsa:2048"], 2, "not supported"),
])
def test_rotate_intermediate_refuses_bad_input_and_changes_nothing(store_path: Path, cli: Any, args: list[str],
                                                                   code: int, message: str) -> None:
    before = snapshot(store_path)
    result = cli("rotate", "intermediate", "--store", store_path, *args)
    assert result.exit_code == code and message in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1
    assert snapshot(store_path) == before


def test_rotate_without_a_store_is_a_clear_error(tmp_path: Path, cli: Any) -> None:
    result = cli("rotate", "intermediate", "--store", tmp_path / "nothing")
    assert result.exit_code == 3 and "no CA in this store" in result.stderr


def test_next_generation_names() -> None:
    from privca.authority.rotation import next_generation_cn

    assert next_generation_cn("Example UC Issuing CA 1", 1, 2) == "Example UC Issuing CA 2"
    assert next_generation_cn("Example UC Issuing CA 2", 2, 5) == "Example UC Issuing CA 5"
    assert next_generation_cn("Example UC Root CA", 1, 2) == "Example UC Root CA G2"
    assert next_generation_cn("Example UC Root CA 2026", 1, 2) == "Example UC Root CA 2026 G2"
    assert next_generation_cn("Example UC Root CA G1", 1, 2) == "Example UC Root CA G2"
    assert next_generation_cn("Example UC Issuing CA 2026-1", 1, 2) == "Example UC Issuing CA 2026-2"


# --- the ledger upgrade ---------------------------------------------------------------------------------------


def test_a_ledger_from_before_rotation_is_upgraded_in_place(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import privca.ledger.db as ledger_module
    from privca.ledger.cas import by_id

    path = tmp_path / "privca.db"
    with monkeypatch.context() as patch:
        patch.setattr(ledger_module, "MIGRATIONS", ledger_module.MIGRATIONS[:1])
        old = ledger_module.Ledger(path)
        old._conn.execute("INSERT INTO cas (name, role, generation, subject, serial, key_type, key_ref, not_before, "
                         "not_after, fingerprint_sha256, created_at, pem) VALUES ('root-1', 'root', 1, 'CN=R', '1', "
                         "'ec:secp256r1', 'k', '2026-01-01T00:00:00Z', '2046-01-01T00:00:00Z', 'f', "
                         "'2026-01-01T00:00:00Z', 'p')")
        old.close()
    upgraded = ledger_module.Ledger(path)
    try:
        applied = [row[0] for row in upgraded._conn.execute(
            "SELECT name FROM _sqlite_migrations WHERE migration_set = 'privca' ORDER BY rowid")]
        assert applied == [name for name, _ in ledger_module.MIGRATIONS]
        assert by_id(upgraded, 1).replaced_by is None and all_crosses(upgraded) == []
        columns = [row[1] for row in upgraded._conn.execute("PRAGMA table_info(certificates)")]
        assert "csr_der" in columns
    finally:
        upgraded.close()


# --- the plan -------------------------------------------------------------------------------------------------


def test_plan_after_rotating_the_intermediate(store: Any, passphrase: Any, tmp_path: Path, rsa2048_key: Any) -> None:
    from privca.lifecycle.plan import rotation_plan
    from privca.authority.rotation import rotate_intermediate
    from privca.authority.signer import issue

    csr = tmp_path / "cucm.csr"
    from cryptography.hazmat.primitives.serialization import Encoding

    csr.write_bytes(build_csr(rsa2048_key, cn="cucm1.example.com",
                              sans=["cucm1.example.com"]).public_bytes(Encoding.PEM))
    soon = issue(store, [csr], passphrase, now=NOW, profile="cucm", days=20)[0].to_json()
    later = issue_leaf(store, tmp_path / "b", "expc", passphrase)
    rotate_intermediate(store, passphrase, now=NOW, key_type="ec:secp256r1")
    plan = rotation_plan(store, NOW, horizon_days=60)

    assert [leaf["serial"] for leaf in plan["leaves"]] == [soon["serial"]]
    leaf = plan["leaves"][0]
    renew_by = (NOW - timedelta(minutes=5) + timedelta(days=20 - 30, seconds=-1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert (leaf["action"], leaf["key_source"], leaf["issuer"], leaf["due"]) == ("renew", "csr-on-record",
                                                                                 "issuing-1", renew_by)
    # The new generation must reach every peer in use before the first renewal (which it will sign).
    assert {bundle["peer"] for bundle in plan["trust"]} == {"cucm", "expressway"}
    for bundle in plan["trust"]:
        assert bundle["cas"] == ["root-1", "issuing-1", "issuing-2"]
        assert bundle["new"] == ["issuing-2"] and bundle["deliver_by"] == renew_by
    cas = {ca["name"]: ca for ca in plan["cas"]}
    assert cas["issuing-1"]["action"] == "remove" and cas["issuing-1"]["due"] == later["not_after"]
    assert cas["issuing-2"]["action"] == "rotate" and cas["root-1"]["command"] == "privca rotate root"
    # The to-do list is in date order and starts with the overdue renewal and the trust delivery.
    dues = [action["due"] for action in plan["actions"]]
    assert dues == sorted(dues)
    assert {action["command"] for action in plan["actions"][:3]} >= {f"privca renew {soon['serial']}",
                                                                     "privca export cucm --out DIR"}


def test_plan_uses_the_crl_schedule_hook(store: Any) -> None:
    from privca.lifecycle.plan import rotation_plan

    next_update = "2026-12-06T12:00:00Z"
    plan = rotation_plan(store, NOW, crl_schedule=lambda ledger, now: {2: parse_time(next_update)})
    crls = {crl["ca"]: crl for crl in plan["crls"]}
    assert crls["issuing-1"]["next_update"] == next_update and crls["root-1"]["next_update"] is None
    assert crls["issuing-1"]["crl_url"] == "http://pki.example.test/crl/issuing-1.crl"
    assert {"when": "deadline", "due": next_update, "what": "publish a fresh CRL for issuing-1", "command": "privca crl",
            "why": "Expressway treats every certificate of a CA whose CRL has expired as revoked",
            "overdue": False} in plan["actions"]
    # The same date seen a month later is overdue: to be done now.
    late = rotation_plan(store, NOW + timedelta(days=30), crl_schedule=lambda ledger, now: {2: parse_time(next_update)})
    assert [a["overdue"] for a in late["actions"] if a["what"] == "publish a fresh CRL for issuing-1"] == [True]
    # By default the schedule is the ledger's latest signed CRLs.
    from privca.keys.material import Passphrase
    from privca.revocation.revoke import issue_crls

    from conftest import PASSPHRASE

    issue_crls(store, Passphrase(PASSPHRASE.encode()), now=NOW, days=7)
    signed = {crl["ca"]: crl for crl in rotation_plan(store, NOW)["crls"]}
    assert signed["issuing-1"]["next_update"] and signed["root-1"]["next_update"]


def test_plan_cli(store_path: Path, cli: Any) -> None:
    before = snapshot(store_path)
    result = cli("plan", "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    data = json.loads(result.stdout)
    assert {ca["name"] for ca in data["cas"]} == {"root-1", "issuing-1"}
    table = cli("plan", "--store", store_path)
    assert table.exit_code == 0 and "privca rotate intermediate" in table.stdout
    assert cli("plan", "--store", store_path, "--within", "-1").exit_code == 2
    assert snapshot(store_path) == before
    assert ledger_counts(store_path) == (0, 1)


def test_plan_says_to_renew_everything_a_revoked_issuing_ca_signed(store: Any, store_path: Path, cli: Any,
                                                                   passphrase: Any, tmp_path: Path) -> None:
    from privca.lifecycle.plan import rotation_plan

    leaf = issue_leaf(store, tmp_path, "expc", passphrase)
    assert not [a for a in rotation_plan(store, NOW)["actions"] if leaf["serial"] in (a["command"] or "")]
    issuing = active(store.ledger, "issuing")
    assert issuing is not None
    assert cli("revoke", issuing.serial, "--ca", "--reason", "keyCompromise", "--store", store_path).exit_code == 0
    actions = [a for a in rotation_plan(store, NOW)["actions"] if leaf["serial"] in (a["command"] or "")]
    assert len(actions) == 1 and "was revoked" in actions[0]["why"] and actions[0]["overdue"] is False


def test_root_rollover_chains_validate_against_the_other_root_alone(cli: Any, store_path: Path, make_csr: Any,
                                                                    tmp_path: Path,
                                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    """OpenSSL, without -partial_chain: a new leaf against the old root alone, an old leaf against the new root
    alone, each with the chain privca wrote for it; the ordinary .chain.pem is the negative control."""
    monkeypatch.setattr("privca.cli.issue_cmd.now", lambda: NOW)  # one clock with rotate (pinned above)
    old = json.loads(cli("issue", make_csr("old.csr"), "--out", tmp_path / "old", "--store", store_path,
                         "--json").stdout)["certificates"][0]
    roots = {}
    rotated = cli("rotate", "root", "--key-type", "ec:secp256r1", "--store", store_path, "--json")
    assert rotated.exit_code == 0, rotated.stderr
    for name in ("root-1", "root-2"):
        roots[name] = tmp_path / f"{name}.pem"
        roots[name].write_text(cli("ca", "show", name, "--pem", "--store", store_path).stdout)
    new = json.loads(cli("issue", make_csr("new.csr", folder=tmp_path / "csr2"), "--out", tmp_path / "new",
                         "--store", store_path, "--json").stdout)["certificates"][0]

    def verify(root: str, untrusted: str | Path, leaf: str) -> Any:
        return run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", roots[root], "-untrusted",
                        untrusted, leaf)

    # New leaf, peer still on root-1.
    for_old_root = new["chains_for_other_roots"]["root-1"]
    assert Path(for_old_root) == tmp_path / "new" / "new.chain-root-1.pem"
    good = verify("root-1", for_old_root, new["cert_path"])
    assert good.returncode == 0 and good.stdout.strip().endswith(": OK"), good.stdout + good.stderr
    assert "BEGIN" in Path(for_old_root).read_text() and len(x509.load_pem_x509_certificates(
        Path(for_old_root).read_bytes())) == 2  # issuing-2 and the cross-certificate, no self-signed root
    stuck = verify("root-1", new["chain_path"], new["cert_path"])
    assert stuck.returncode != 0  # the self-signed root-2 in .chain.pem stops OpenSSL
    # Old leaf, peer already on root-2: rotate root wrote its chain beside the old files.
    for_new_root = tmp_path / "old" / "old.chain-root-2.pem"
    assert str(for_new_root) in json.loads(rotated.stdout)["rollover_chains"]
    good = verify("root-2", for_new_root, old["cert_path"])
    assert good.returncode == 0, good.stdout + good.stderr
    assert verify("root-2", old["chain_path"], old["cert_path"]).returncode != 0
    # show --chain-for prints the same chains from the ledger.
    assert cli("show", new["serial"], "--chain-for", "root-1", "--store", store_path).stdout == \
        Path(for_old_root).read_text()
    assert cli("show", old["serial"], "--chain-for", "root-2", "--store", store_path).stdout == \
        for_new_root.read_text()
    missing = cli("show", old["serial"], "--chain-for", "root-1", "--store", store_path)
    assert missing.exit_code != 0 and "root-2" in missing.stderr

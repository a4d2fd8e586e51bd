"""Values are checked where they enter privca (CSRs, profiles, CA URLs); each refusal has its accepted twin.

The refusals themselves, with their messages, are cases in tests/corpus/cases.toml; this file holds the positive
controls, and checks with openssl that what is accepted ends up in the certificate as expected.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from conftest import run_tool, snapshot
from privca.common.names import escaped, ip_problem
from privca.common.urls import normalized_url, url_problem

CORPUS = Path(__file__).parent / "corpus"


# --- URLs ---------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("given, stored", [
    ("http://pki.example.com/crl", "http://pki.example.com/crl"),
    ("HTTP://PKI.Example.COM:8080/crl", "http://pki.example.com:8080/crl"),
    ("http://bücher.example.com/crl", "http://xn--bcher-kva.example.com/crl"),
    ("https://[2001:db8::1]/ocsp", "https://[2001:db8::1]/ocsp"),
    ("http://192.0.2.10:65535/crl%20files", "http://192.0.2.10:65535/crl%20files"),
])
def test_good_urls_are_kept_in_their_certificate_form(given: str, stored: str) -> None:
    assert url_problem(given) is None and normalized_url(given) == stored


@pytest.mark.parametrize("url", ["http://u@pki.example.com/", "ftp://pki.example.com/", "http://pki.example.com:65536/",
                                 "http://pki.example.com/\u200fx", "http://pki.example.com/x\n", "http:///crl"])
def test_bad_urls_have_a_reason(url: str) -> None:
    assert url_problem(url)


def test_an_idna_crl_url_reaches_the_certificate_as_a_labels(cli: Any, store_path: Path, make_csr: Any,
                                                             tmp_path: Path) -> None:
    assert cli("ca", "set-url", "--crl-url", "http://bücher.example.com/crl", "--store", store_path).exit_code == 0
    csr = make_csr("node.csr", cn="node.example.com", sans=["node.example.com"])
    assert cli("issue", csr, "--out", tmp_path / "out", "--store", store_path).exit_code == 0
    text = run_tool("openssl", "x509", "-in", tmp_path / "out" / "node.pem", "-noout", "-ext", "crlDistributionPoints",
                    check=True).stdout
    assert "URI:http://xn--bcher-kva.example.com/crl/" in text


def test_a_bad_url_already_in_the_ledger_fails_issue_in_one_line(cli: Any, store_path: Path, make_csr: Any,
                                                                 tmp_path: Path) -> None:
    # Written by an older privca or by hand: issue names the CA and the fix instead of ending in a traceback.
    conn = sqlite3.connect(store_path / "privca.db")
    conn.execute("UPDATE cas SET crl_url = 'http://bücher.example.com/crl/issuing-1.crl' WHERE role = 'issuing'")
    conn.commit()
    conn.close()
    csr = make_csr("node.csr", cn="node.example.com", sans=["node.example.com"])
    before = snapshot(store_path)
    result = cli("issue", csr, "--out", tmp_path / "out", "--store", store_path)
    assert result.exit_code == 8 and result.stderr.count("\n") == 1
    assert "its CRL URL" in result.stderr and "privca ca set-url" in result.stderr
    assert snapshot(store_path) == before and not (tmp_path / "out").exists()


# --- subjects, keys, IP SANs ------------------------------------------------------------------------------------

@pytest.mark.parametrize("length, ok", [(64, True), (65, False)])
def test_organisational_unit_upper_bound(cli: Any, store_path: Path, make_csr: Any, tmp_path: Path, length: int,
                                         ok: bool) -> None:
    csr = make_csr("ou.csr", cn="ou.example.com", sans=["ou.example.com"],
                   extra_subject=[x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "u" * length)])
    result = cli("issue", csr, "--out", tmp_path / "out", "--store", store_path)
    assert (result.exit_code == 0) is ok, result.stderr
    if not ok:
        assert f"subject OU is {length} characters long; RFC 5280 allows up to 64" in result.stderr


@pytest.mark.parametrize("address, problem", [("10.1.2.3", None), ("192.0.2.7", None), ("2001:db8::7", None),
                                              ("0.0.0.0", "unspecified"), ("::", "unspecified"),
                                              ("255.255.255.255", "broadcast"), ("224.0.0.1", "multicast"),
                                              ("127.0.0.1", "loopback"), ("240.0.0.1", "reserved")])
def test_ip_sans_name_a_host(address: str, problem: str | None) -> None:
    found = ip_problem(address)
    assert (found is None) if problem is None else (problem in (found or ""))
    assert ip_problem(address, special=True) is None  # a profile with san.allow_special_ips takes them all


def test_a_profile_may_allow_special_ip_sans(cli: Any, store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    csr = make_csr("ip.csr", cn="cube.example.com", sans=["cube.example.com"], ip_sans=["0.0.0.0"])
    refused = cli("issue", csr, "--profile", "cube", "--out", tmp_path / "out", "--store", store_path)
    assert refused.exit_code == 7 and "unspecified address" in refused.stderr
    text = (Path(__file__).parents[1] / "profiles" / "cube.toml").read_text()
    (store_path / "profiles").mkdir(exist_ok=True)
    (store_path / "profiles" / "cube-any-ip.toml").write_text(text.replace("types = [\"dns\", \"ip\"]",
                                                                          "types = [\"dns\", \"ip\"]\nallow_special_ips = true"))
    allowed = cli("issue", csr, "--profile", "cube-any-ip", "--out", tmp_path / "out", "--store", store_path)
    assert allowed.exit_code == 0, allowed.stderr
    text = run_tool("openssl", "x509", "-in", tmp_path / "out" / "ip.pem", "-noout", "-ext", "subjectAltName",
                    check=True).stdout
    assert "IP Address:0.0.0.0" in text


# --- profiles -----------------------------------------------------------------------------------------------------

def test_a_store_profile_replaces_a_shipped_one_only_when_it_says_so(cli: Any, store_path: Path, tmp_path: Path) -> None:
    shipped = (Path(__file__).parents[1] / "profiles" / "expressway-c.toml").read_text()
    target = store_path / "profiles" / "expressway-c.toml"
    target.parent.mkdir(exist_ok=True)
    target.write_text(shipped.replace("validity_days = ", "validity_days = 90 # ", 1))
    refused = cli("profiles", "show", "expressway-c", "--store", store_path)
    assert refused.exit_code == 5 and "a shipped profile has this name" in refused.stderr
    target.write_text("replaces_shipped = true\n" + target.read_text())
    shown = cli("profiles", "show", "expressway-c", "--store", store_path, "--json")
    assert shown.exit_code == 0, shown.stderr
    assert '"source": "' + str(target) in shown.stdout and '"validity_days": 90' in shown.stdout
    listed = cli("profiles", "list", "--store", store_path)
    assert listed.exit_code == 0 and "profiles/expressway-c.toml" in listed.stdout.replace("\n", "").replace(" ", "")


def test_profile_text_reaches_the_terminal_escaped(cli: Any, store_path: Path) -> None:
    shipped = (Path(__file__).parents[1] / "profiles" / "cms.toml").read_text()
    (store_path / "profiles").mkdir(exist_ok=True)
    (store_path / "profiles" / "cms-evil.toml").write_text(
        shipped.replace('description = "', 'description = "\\u001b[2J\\u202e ', 1))
    for args in (["profiles", "show", "cms-evil"], ["profiles", "list"]):
        result = cli(*args, "--store", store_path)
        assert result.exit_code == 0, result.stderr
        assert "\x1b" not in result.stdout and "\u202e" not in result.stdout
        assert "\\x1b[2J" in result.stdout.replace("\n", "")


def test_escaped_keeps_plain_text_and_escapes_the_rest() -> None:
    assert escaped("expc1.example.com /crl") == "expc1.example.com /crl"
    assert escaped("a\x1b[2J\u202eb\n\U000e0001") == "a\\x1b[2J\\u202eb\\x0a\\U000e0001"

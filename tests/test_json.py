"""One JSON shape (docs/json.md): every command's --json is an object with its schema version, writes the same
thing in the same format (serials, fingerprints, RFC 4514 names, typed SANs, ISO 8601 UTC times, absolute paths,
words for states), the same certificate reads the same in every command, and errors are JSON on stderr."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509


def test_errors_are_json_on_stderr_under_json(cli: Any, store_path: Path) -> None:
    cases = [(("show", "deadbeef", "--store", store_path, "--json"), 8, "ledger"),
             (("list", "--status", "bogus", "--store", store_path, "--json"), 2, "usage"),
             (("list", "--bogus", "--json"), 2, "usage"),
             (("list", "--store", store_path / "nowhere", "--json"), 3, "store")]
    for args, code, kind in cases:
        result = cli(*args)
        assert result.exit_code == code and result.stdout == "", args
        document = json.loads(result.stderr)
        assert document["schema"] == 1 and document["error"]["kind"] == kind
        assert document["error"]["exit_code"] == code and document["error"]["message"]
    # Negative control: without --json the same error is the one-line text.
    plain = cli("show", "deadbeef", "--store", store_path)
    assert plain.exit_code == 8 and plain.stderr.startswith("Error: serial deadbeef")


def test_error_kinds_are_distinct_words() -> None:
    from privca import errors
    from privca.cli import error_kind

    classes = [c for c in vars(errors).values() if isinstance(c, type) and issubclass(c, errors.PrivcaError)]
    kinds = [error_kind(c) for c in classes]
    assert len(set(kinds)) == len(kinds) and {"key_material", "usage", "csr", "error"} <= set(kinds)
    assert all(k.replace("_", "").isalpha() and k == k.lower() for k in kinds)


# --- every command agrees ---------------------------------------------------------------------------------------

ISO = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")
TIMES = {"not_before", "not_after", "issued_at", "revoked_at", "created_at", "retired_at", "this_update",
         "next_update", "generated_at", "due", "deliver_by", "needed_until", "publish_until"}
ENUMS = {"status", "role", "kind", "state", "severity", "verdict", "position", "when", "revocation_reason", "action",
         "worst"}
SAN_TYPES = {"dns", "ip", "email", "uri", "other"}


def violations(document: Any) -> list[str]:
    """Where ``document`` breaks docs/json.md: the formats every --json shares."""
    found: list[str] = []
    if not isinstance(document, dict) or document.get("schema") != 1:
        found.append("document: not an object with schema 1")

    def check(key: str, value: Any, where: str) -> None:
        if value is None:
            return
        if key == "serial" and not re.fullmatch(r"[0-9a-f]+", str(value)):
            found.append(f"{where}: serial {value!r} is not lower-case hex")
        elif key == "fingerprint_sha256" and not re.fullmatch(r"[0-9a-f]{64}", str(value)):
            found.append(f"{where}: fingerprint {value!r} is not 64 lower-case hex digits")
        elif key == "fingerprint_sha1" and not re.fullmatch(r"[0-9a-f]{40}", str(value)):
            found.append(f"{where}: fingerprint {value!r} is not 40 lower-case hex digits")
        elif key in TIMES and not ISO.fullmatch(str(value)):
            found.append(f"{where}: time {value!r} is not ISO 8601 UTC with Z")
        elif (key.endswith("_path") or key in {"folder", "store", "csr", "path"}) and isinstance(value, str) \
                and not (os.path.isabs(value) or value.startswith("- ")):
            found.append(f"{where}: path {value!r} is not absolute")
        elif key in {"subject", "issuer_subject"} and isinstance(value, str):  # (a profile's subject is a policy)
            try:
                canonical = x509.Name.from_rfc4514_string(str(value)).rfc4514_string()
            except ValueError:
                canonical = None
            if canonical != value:
                found.append(f"{where}: name {value!r} is not RFC 4514")
        elif key == "sans" and not (isinstance(value, list) and all(
                isinstance(s, dict) and set(s) == {"type", "value"} and s["type"] in SAN_TYPES for s in value)):
            found.append(f"{where}: sans {value!r} are not typed")
        elif key in ENUMS and isinstance(value, str) and not re.fullmatch(r"[A-Za-z][A-Za-z0-9_.-]*", value):
            found.append(f"{where}: {key} {value!r} is a phrase, not a word")
        elif key == "issuer" and isinstance(value, str) and "=" in value:
            found.append(f"{where}: issuer {value!r} is a name; a CA's name goes in issuer, a DN in issuer_subject")

    def walk(value: Any, where: str) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                check(key, item, f"{where}.{key}")
                walk(item, f"{where}.{key}")
        elif isinstance(value, list):
            for index, item in enumerate(value):
                walk(item, f"{where}[{index}]")
            if where.endswith(".locations"):
                for item in value:
                    base = item.rpartition("#")[0] or item
                    if os.path.exists(base) and not os.path.isabs(base):
                        found.append(f"{where}: location {item!r} is not absolute")

    walk(document, "")
    return found


def test_negative_control_the_checker_sees_each_kind_of_disagreement() -> None:
    bad = {"schema": 1, "serial": "3F2A", "fingerprint_sha256": "AB:CD", "not_after": "2027-01-01 00:00",
           "cert_path": "certs/a.pem", "subject": "CN=a, O=b", "sans": ["DNS:a.example.com"], "kind": "root CA",
           "issuer": "CN=Example"}
    assert len(violations(bad)) == 8
    assert violations([{"serial": "ab"}]) == ["document: not an object with schema 1"]
    assert violations({"schema": 1, "serial": "3f2a", "subject": "CN=a,O=b", "kind": "root"}) == []


@pytest.fixture
def documents(cli: Any, store_path: Path, make_csr: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Every --json document privca prints, from one store with issued, revoked and held certificates."""
    monkeypatch.chdir(tmp_path)  # relative arguments, as people type them: the JSON must still be absolute
    store = str(store_path)
    docs: dict[str, Any] = {}

    def run(name: str, *args: Any, codes: tuple[int, ...] = (0,)) -> Any:
        result = cli(*args, "--json")
        assert result.exit_code in codes, (name, result.stderr)
        docs[name] = json.loads(result.stdout)
        return docs[name]

    csrs = [make_csr(f"a{i}.csr", cn=f"a{i}.example.com", sans=[f"a{i}.example.com"], folder=Path("csrs"))
            for i in range(3)]
    run("issue --dry-run", "issue", *[os.path.relpath(c) for c in csrs], "--out", "certs", "--store", store,
        "--dry-run")
    issued = run("issue", "issue", *[os.path.relpath(c) for c in csrs], "--out", "certs", "--store", store)
    serials = [c["serial"] for c in issued["certificates"]]
    run("verify", "verify", "--store", store)
    run("revoke", "revoke", serials[0], "--reason", "keyCompromise", "--store", store)
    run("hold", "revoke", serials[1], "--reason", "certificateHold", "--store", store)
    run("unhold", "unhold", serials[1], "--store", store)
    run("crl", "crl", "--store", store, "--out", "crl")
    run("publish", "publish", "www", "--store", store)
    run("status", "status", "--store", store, codes=(0, 1, 2))
    run("list", "list", "--store", store)
    run("show", "show", serials[2], "--store", store)
    run("ca list", "ca", "list", "--store", store)
    run("ca show", "ca", "show", "issuing-1", "--store", store)
    run("export", "export", "cucm", "--out", "bundles", "--store", store)
    run("plan", "plan", "--store", store)
    run("profiles", "profiles", "--store", store)
    run("audit", "audit", "certs", "--fail-on", "never")
    run("check", "check", "certs/a2.pem", "--chain", "certs/a2.chain.pem", "--for", "expressway-c",
        "--fail-on", "never")
    run("backup", "backup", "store.pcabk", "--store", store)
    return docs


def test_every_command_writes_the_shared_formats(documents: dict[str, Any]) -> None:
    assert len(documents) == 19
    problems = {name: violations(document) for name, document in documents.items()}
    assert {name: found for name, found in problems.items() if found} == {}


def test_the_same_certificate_reads_the_same_in_every_command(documents: dict[str, Any]) -> None:
    listed = {c["serial"]: c for c in documents["list"]["certificates"]}
    shown = documents["show"]
    audited = {c["serial"]: c for c in documents["audit"]["certificates"]}
    checked = documents["check"]["certificate"]
    for field in ("serial", "subject", "sans", "not_before", "not_after", "fingerprint_sha256", "key_type"):
        assert shown[field] == listed[shown["serial"]][field] == audited[shown["serial"]][field] == checked[field], \
            field
    assert shown["cert_path"] + "#1" in audited[shown["serial"]]["locations"] or \
        shown["cert_path"] in audited[shown["serial"]]["locations"]
    issuing = documents["ca show"]
    assert audited[shown["serial"]]["issuer_subject"] == issuing["subject"] and shown["issuer"] == issuing["name"]
    exported = {ca["name"]: ca for ca in documents["export"]["cas"]}
    for ca in documents["ca list"]["cas"]:
        assert exported[ca["name"]]["fingerprint_sha256"] == ca["fingerprint_sha256"]
        assert exported[ca["name"]]["subject"] == ca["subject"] and exported[ca["name"]]["kind"] in ("root",
                                                                                                    "intermediate")
    assert documents["revoke"]["revocation_reason"] == "keyCompromise"
    assert listed[documents["revoke"]["serial"]]["status"] == "revoked"
    assert [c["serial"] for c in documents["issue"]["certificates"]] == [c["serial"] for c in
                                                                         documents["issue"]["certificates"]]
    previews = documents["issue --dry-run"]["certificates"]
    assert [p["cert_path"] for p in previews] == [c["cert_path"] for c in documents["issue"]["certificates"]]

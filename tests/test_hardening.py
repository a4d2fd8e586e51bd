"""Unit tests for the fixes the hostile corpus (tests/corpus/) led to, each with its positive control."""

from __future__ import annotations

import pytest

from privca.common.names import dns_name_problem


@pytest.mark.parametrize("name", ["xn--mnchen-3ya.example.com", "xn--e1afmkfd.example.com",
                                  "xn--wgv71a119e.example.com", "expc1.example.com"])
def test_genuine_idna_names_pass(name: str) -> None:
    assert dns_name_problem(name) is None  # münchen, пример, 東京: real internationalised names


@pytest.mark.parametrize("name, problem", [
    ("xn--a-ecp.example.com", "DIGIT ONE FULL STOP"),           # 'a⒈' looks like 'a1.'
    ("xn--aevil-7t3d.example.com", "IDEOGRAPHIC FULL STOP"),    # 'a。evil' looks like 'a.evil'
    ("xn--pple-43d.example.com", "mixes CYRILLIC and LATIN"),   # Cyrillic 'а' + 'pple'
    ("xn--zz-.example.com", "not a valid host name label"),
    ("xn--99999999999.example.com", "not valid punycode"),
])
def test_idna_tricks_are_refused(name: str, problem: str) -> None:
    assert problem in (dns_name_problem(name) or "")


def test_malformed_subject_attribute_is_one_problem_and_no_warning(cli, store_path, tmp_path, recwarn) -> None:
    from pathlib import Path

    corpus = Path(__file__).parent / "corpus" / "csr"
    result = cli("issue", corpus / "country-three-letters.csr", "--out", tmp_path / "out", "--store", store_path)
    assert result.exit_code == 7 and result.stderr.count("\n") == 1
    assert "subject C=USA: Attribute's length must be >= 2 and <= 2, but it was 3" in result.stderr
    assert not [w for w in recwarn if "Attribute" in str(w.message)]


@pytest.mark.parametrize("target", ["/dev/zero", "directory", "fifo", "deep", "absurd"])
def test_profile_files_that_are_not_profiles(cli, store_path, tmp_path, target) -> None:
    import os
    from pathlib import Path

    corpus = Path(__file__).parent / "corpus" / "profile"
    path = {"/dev/zero": Path("/dev/zero"), "directory": tmp_path, "fifo": tmp_path / "pipe.toml",
            "deep": corpus / "deeply-nested.toml", "absurd": corpus / "absurd-max-validity.toml"}[target]
    if target == "fifo":
        os.mkfifo(path)
    result = cli("profiles", "check", path, "--store", store_path)
    assert result.exit_code == 5 and result.stderr.startswith("Error: ") and result.stderr.count("\n") == 1


def test_shipped_profiles_still_load() -> None:
    from privca.issuance.profiles import available_profiles, load_profile

    assert all(load_profile(name).max_validity_days <= 3650 for name in available_profiles())


@pytest.mark.parametrize("days", ["36501", "100000000000", "-1"])
def test_expiring_within_out_of_range(cli, store_path, days) -> None:
    result = cli("list", "--expiring-within", days, "--store", store_path)
    assert result.exit_code == 2 and result.stderr.startswith("Error: --expiring-within") and "Traceback" not in result.stderr
    assert cli("list", "--expiring-within", "36500", "--store", store_path).exit_code == 0


def test_passphrase_file_is_read_bounded(cli, store_path, tmp_path) -> None:
    result = cli("verify", "--store", store_path, "--passphrase-file", "/dev/zero")
    assert result.exit_code == 4 and "longer than 4096 bytes" in result.stderr
    good = tmp_path / "pass"
    good.write_text("correct horse battery staple\n")
    good.chmod(0o600)  # privca refuses a passphrase file others can read
    assert cli("verify", "--store", store_path, "--passphrase-file", good).exit_code == 0


@pytest.mark.parametrize("args, message", [
    (["issue", "x.csr", "--days", "abc"], "Invalid value for '--days'"),
    (["frobnicate"], "No such command 'frobnicate'"),
    (["list", "--frob"], "No such option: --frob"),
    (["issue"], "Missing argument"),
])
def test_usage_mistakes_are_one_line(cli, args, message) -> None:
    result = cli(*args)
    assert result.exit_code == 2 and result.stderr.startswith(f"Error: {message}") and result.stderr.count("\n") == 1

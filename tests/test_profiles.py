"""Profiles: every shipped one loads and grants what Cisco needs; every invalid one fails with its message."""

from __future__ import annotations

from pathlib import Path

import pytest

from privca.errors import ProfileError
from privca.issuance.profiles import available_profiles, load_profile, load_profile_file

INVALID = sorted((Path(__file__).parent / "profiles_invalid").glob("*.toml"))
SHIPPED = ("expressway-c", "expressway-e", "expressway-server", "expressway-client", "cucm", "unity", "cms", "cube")


def test_every_required_profile_is_shipped() -> None:
    assert set(SHIPPED) <= set(available_profiles())


@pytest.mark.parametrize("name", sorted(available_profiles()))
def test_shipped_profile_loads(name: str) -> None:
    profile = load_profile(name)
    assert profile.source == "shipped"
    assert profile.eku and profile.key_allowed
    # Expressway and CUCM take nothing weaker than RSA-2048 and nothing over 4096 bits.
    assert all(k in {"rsa:2048", "rsa:3072", "rsa:4096", "ec:secp256r1", "ec:secp384r1", "ec:secp521r1"}
               for k in profile.key_allowed)
    assert not profile.allow_wildcards
    assert profile.max_san_length <= 999


@pytest.mark.parametrize(
    ("name", "eku"),
    [
        ("expressway-c", ("serverAuth", "clientAuth")),
        ("expressway-e", ("serverAuth", "clientAuth")),
        ("expressway-server", ("serverAuth",)),
        ("expressway-client", ("serverAuth", "clientAuth")),
        ("cucm", ("serverAuth", "clientAuth")),
        ("unity", ("serverAuth", "clientAuth")),
        ("cms", ("serverAuth", "clientAuth")),
        ("cube", ("serverAuth", "clientAuth")),
    ],
)
def test_profile_eku(name: str, eku: tuple[str, ...]) -> None:
    assert load_profile(name).eku == eku


def test_cucm_keeps_data_encipherment_and_wants_rsa() -> None:
    cucm = load_profile("cucm")
    assert "dataEncipherment" in cucm.key_usage_for("rsa")
    assert cucm.issuer_algorithms == ("rsa",)
    assert all(k.startswith("rsa:") for k in cucm.key_allowed)


def test_variants_inherit_tables_they_do_not_change() -> None:
    base, server = load_profile("expressway-c"), load_profile("expressway-server")
    assert server.key_allowed == base.key_allowed and server.max_san_length == base.max_san_length
    assert server.key_usage_for("rsa") == ("digitalSignature", "keyEncipherment")
    assert server.key_usage_for("ec") == ("digitalSignature",)


@pytest.mark.parametrize("path", INVALID, ids=[p.stem for p in INVALID])
def test_invalid_profile_is_rejected_with_its_message(path: Path) -> None:
    expected = path.read_text().splitlines()[0].removeprefix("# expect: ")
    with pytest.raises(ProfileError) as info:
        load_profile_file(path)
    assert expected in info.value.one_line()
    assert str(path) in info.value.one_line()


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bad = tmp_path / "many.toml"
    bad.write_text('schema = 2\ndescription = "x"\nkind = "root"\nvalidity_days = 0\n[key]\nallowed = ["rsa:512"]\n'
                   '[key_usage]\nvalues = ["flying"]\n[extended_key_usage]\nvalues = ["anyThing"]\n')
    with pytest.raises(ProfileError) as info:
        load_profile_file(bad)
    text = info.value.one_line()
    for fragment in ("schema:", "kind:", "validity_days:", "key.allowed:", "key_usage.values:", "extended_key_usage.values:"):
        assert fragment in text


def test_store_profiles_are_found_and_shadow_nothing_by_accident(store_path: Path, cli) -> None:
    custom = store_path / "profiles" / "expressway-c-short.toml"
    custom.write_text('extends = "expressway-c"\nschema = 1\ndescription = "90-day Expressway-C"\nkind = "leaf"\n'
                      "validity_days = 90\n")
    profile = load_profile("expressway-c-short", store_path / "profiles")
    assert profile.validity_days == 90 and profile.eku == ("serverAuth", "clientAuth")
    listed = cli("profiles", "--store", store_path, "--json")
    assert listed.exit_code == 0
    assert "expressway-c-short" in listed.stdout and '"source": "shipped"' in listed.stdout


def test_profiles_cli_show_and_check(cli, tmp_path: Path) -> None:
    shown = cli("profiles", "show", "expressway-client", "--json")
    assert shown.exit_code == 0 and '"clientAuth"' in shown.stdout and "TAC 225693" in shown.stdout
    good = tmp_path / "ok.toml"
    good.write_text('extends = "cms"\nschema = 1\ndescription = "CMS 1y"\nkind = "leaf"\nvalidity_days = 365\n')
    assert cli("profiles", "check", good).exit_code == 0
    bad = cli("profiles", "check", INVALID[0])
    assert bad.exit_code != 0 and bad.stderr.startswith("Error: ") and bad.stderr.count("\n") == 1
    unknown = cli("profiles", "show", "nope")
    assert unknown.exit_code != 0 and "profile 'nope': unknown" in unknown.stderr


def test_a_typo_in_the_parent_is_reported_through_the_child(tmp_path: Path) -> None:
    store_profiles = tmp_path / "profiles"
    store_profiles.mkdir()
    (store_profiles / "base.toml").write_text(
        'schema = 1\ndescription = "base"\nkind = "leaf"\nvalidity_days = 397\n[key]\nallowed = ["rsa:2048"]\n'
        '[key_usage]\nvalues = ["digitalSignature"]\n[extended_key_usage]\nvalues = ["serverAuth"]\n'
        "[san]\nallow_wildcard = true\n")
    child = store_profiles / "child.toml"
    child.write_text('extends = "base"\nschema = 1\ndescription = "child"\nkind = "leaf"\nvalidity_days = 90\n')
    with pytest.raises(ProfileError) as info:
        load_profile_file(child, store_profiles)
    assert "extends base: san.allow_wildcard: unknown key" in info.value.one_line()
    # Negative control: with the parent fixed, the child loads.
    (store_profiles / "base.toml").write_text((store_profiles / "base.toml").read_text()
                                              .replace("allow_wildcard", "allow_wildcards").replace("true", "false"))
    assert load_profile_file(child, store_profiles).validity_days == 90


def test_the_documented_custom_profile_steps_leave_a_store_that_verify_accepts(cli, store_path: Path, tmp_path: Path,
                                                                               make_csr) -> None:
    """docs/profiles.md, step by step: write the file (umask 022 gives 0644), add it, issue with it, verify."""
    import json
    import os
    import re

    doc = (Path(__file__).parent.parent / "docs" / "profiles.md").read_text()
    example = re.search(r"```toml\n# (?P<name>[\w.-]+\.toml)\n(?P<body>.*?)```", doc, re.S)
    assert example is not None
    source = tmp_path / example["name"]
    source.write_text(example["body"])
    os.chmod(source, 0o644)
    added = cli("profiles", "add", source, "--store", store_path)
    assert added.exit_code == 0, added.stderr
    copy = store_path / "profiles" / example["name"]
    assert copy.stat().st_mode & 0o777 == 0o600 and copy.read_text() == example["body"]
    [issued] = json.loads(cli("issue", make_csr("expc.csr"), "--profile", source.stem, "--store", store_path,
                              "--json").stdout)["certificates"]
    assert issued["profile"] == source.stem
    verified = cli("verify", "--store", store_path, "--skip", "keys")
    assert verified.exit_code == 0, verified.stderr + verified.stdout
    # Negative controls: a copied 0644 file is what verify rejects; a bad profile or a shipped name is not added.
    os.chmod(copy, 0o644)
    assert cli("verify", "--store", store_path, "--skip", "keys").exit_code == 13
    os.chmod(copy, 0o600)
    bad = tmp_path / "broken.toml"
    bad.write_text('extends = "expressway-c"\nschema = 1\nvalidity_dayz = 90\n')
    refused = cli("profiles", "add", bad, "--store", store_path)
    assert refused.exit_code != 0 and "validity_dayz" in refused.stderr
    assert not (store_path / "profiles" / "broken.toml").exists()
    shipped = tmp_path / "expressway-c.toml"
    shipped.write_text(example["body"])
    assert cli("profiles", "add", shipped, "--store", store_path).exit_code != 0
    assert cli("profiles", "add", source, "--store", store_path).exit_code != 0  # exists; --force replaces
    assert cli("profiles", "add", source, "--force", "--store", store_path).exit_code == 0

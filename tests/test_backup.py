"""privca backup / restore: round trip, encryption, refusal to overwrite, hostile archives, consistency while
issuing."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization

from conftest import build_csr, ledger_counts, run_tool, snapshot



def _issue(cli: Any, store_path: Path, make_csr: Any, out: Path, *names: str) -> list[dict[str, Any]]:
    csrs = [make_csr(f"{n}.csr", cn=f"{n}.example.com", sans=[f"{n}.example.com"]) for n in names]
    result = cli("issue", *csrs, "--out", out, "--store", store_path, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)["certificates"]


def test_issue_back_up_destroy_restore_verify_issue_again(store_path: Path, make_csr: Any, cli: Any,
                                                          tmp_path: Path) -> None:
    first = _issue(cli, store_path, make_csr, tmp_path / "out", "a1", "a2", "a3")
    archive = tmp_path / "backups" / "nightly.pcabk"
    archive.parent.mkdir()
    made = cli("backup", archive, "--store", store_path, "--json")
    assert made.exit_code == 0, made.stderr
    summary = json.loads(made.stdout)
    assert summary["certificates"] == 3 and summary["cas"] == 2
    assert sorted(summary["files"]) == ["MANIFEST.json", "keys/issuing-1.key.pem", "keys/root-1.key.pem", "privca.db"]
    assert archive.stat().st_mode & 0o777 == 0o600

    blob = archive.read_bytes()
    assert b"BEGIN" not in blob and b"Test UC" not in blob and b"SQLite format" not in blob  # really encrypted

    shutil.rmtree(store_path)  # the disaster
    restored = cli("restore", archive, "--store", store_path, "--json")
    assert restored.exit_code == 0, restored.stderr
    assert json.loads(restored.stdout)["certificates"] == 3
    assert oct(store_path.stat().st_mode & 0o777) == "0o700"

    check = cli("verify", "--store", store_path, "--json")  # every check, the certificate files included
    assert check.exit_code == 0, check.stdout
    assert json.loads(check.stdout)["checked"]["certificates"] == 3

    again = _issue(cli, store_path, make_csr, tmp_path / "out2", "b1")
    assert again[0]["serial"] not in {record["serial"] for record in first}
    peer = run_tool("openssl", "verify", "-purpose", "sslserver", "-CAfile", again[0]["chain_path"],
                    again[0]["cert_path"], first[0]["cert_path"])
    assert peer.returncode == 0, peer.stderr  # the restored CA signs, and its chain still covers the old ones
    # init, 3 issues, restore, issue: the backup event was recorded after its own snapshot
    assert ledger_counts(store_path) == (4, 6)
    assert cli("verify", "--store", store_path).exit_code == 0


def test_backup_refuses_to_overwrite_and_a_wrong_passphrase(store_path: Path, cli: Any, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    archive = tmp_path / "b.pcabk"
    archive.write_text("an older backup\n")
    result = cli("backup", archive, "--store", store_path)
    assert result.exit_code == 9 and "already exists; use --force" in result.stderr
    assert archive.read_text() == "an older backup\n"
    assert cli("backup", archive, "--store", store_path, "--force").exit_code == 0
    assert archive.read_bytes().startswith(b"PRIVCABK")

    monkeypatch.setenv("PRIVCA_PASSPHRASE", "a passphrase that opens nothing")
    before = snapshot(store_path, tmp_path)
    result = cli("backup", tmp_path / "c.pcabk", "--store", store_path)
    assert result.exit_code == 4 and "wrong passphrase" in result.stderr
    assert snapshot(store_path, tmp_path) == before


@pytest.fixture
def archive(store_path: Path, cli: Any, tmp_path: Path) -> Path:
    path = tmp_path / "good.pcabk"
    assert cli("backup", path, "--store", store_path).exit_code == 0
    return path


@pytest.mark.parametrize("damage, message", [
    (lambda b: b[:len(b) // 2], "cannot decrypt"),
    (lambda b: b[:100] + bytes([b[100] ^ 1]) + b[101:], "cannot decrypt"),
    (lambda b: b[:9] + bytes([40]) + b[10:], "key-derivation parameters (scrypt N=2^40, r=8, p=1) above what privca writes"),
    (lambda b: b"PRIVCABK" + bytes([9]) + b[9:], "backup format 9"),
    (lambda b: os.urandom(len(b)), "not a privca backup"),
])
def test_damaged_archives_restore_nothing(archive: Path, cli: Any, tmp_path: Path, damage: Any, message: str) -> None:
    archive.write_bytes(damage(archive.read_bytes()))
    before = snapshot(tmp_path)
    result = cli("restore", archive, "--store", tmp_path / "new-store")
    assert result.exit_code == 14 and message in result.stderr and result.stderr.count("\n") == 1
    assert snapshot(tmp_path) == before  # no store, no staging folder left behind


def test_wrong_passphrase_restores_nothing(archive: Path, cli: Any, tmp_path: Path,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PRIVCA_PASSPHRASE", "not the passphrase of this CA")
    before = snapshot(tmp_path)
    result = cli("restore", archive, "--store", tmp_path / "new-store")
    assert result.exit_code == 14 and "wrong passphrase" in result.stderr
    assert snapshot(tmp_path) == before


def test_restore_never_overwrites(archive: Path, store_path: Path, cli: Any, tmp_path: Path) -> None:
    before = snapshot(store_path)
    result = cli("restore", archive, "--store", store_path)
    assert result.exit_code == 3 and "holds a CA; privca restore never overwrites a store" in result.stderr
    assert snapshot(store_path) == before
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine\n")
    assert cli("restore", archive, "--store", busy).exit_code == 3
    empty = tmp_path / "empty"
    empty.mkdir()
    assert cli("restore", archive, "--store", empty).exit_code == 0  # an empty folder is a fine target


def _hostile_archive(path: Path, members: dict[str, bytes], passphrase: Any, *, kind: str = "file",
                     lie: bool = False) -> None:
    """An archive encrypted with the right passphrase but holding what privca must refuse."""
    import gzip
    import hashlib
    import io
    import tarfile

    from privca.maintenance.backup import MANIFEST, _encrypt

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        listed = {}
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            if kind == "symlink" and name != "privca.db":
                info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
            elif kind == "device" and name != "privca.db":
                info.type, info.devmajor, info.devminor = tarfile.CHRTYPE, 1, 3
            else:
                info.size = len(data)
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
            listed[name] = hashlib.sha256(data + (b"x" if lie else b"")).hexdigest()
        manifest = json.dumps({"files": listed}).encode()
        info = tarfile.TarInfo(MANIFEST)
        info.size = len(manifest)
        tar.addfile(info, io.BytesIO(manifest))
    path.write_bytes(_encrypt(gzip.compress(buffer.getvalue()), passphrase))


@pytest.mark.parametrize("name, kind, message", [
    ("../escaped.txt", "file", "unsafe or repeated path '../escaped.txt'"),
    ("/tmp/privca-absolute.txt", "file", "unsafe or repeated path '/tmp/privca-absolute.txt'"),
    ("keys/evil-link", "symlink", "which is not a regular file"),
    ("keys/null-device", "device", "which is not a regular file"),
])
def test_hostile_archives_are_refused(store_path: Path, passphrase: Any, cli: Any, tmp_path: Path, name: str,
                                      kind: str, message: str) -> None:
    ledger = (store_path / "privca.db").read_bytes()
    path = tmp_path / "hostile.pcabk"
    _hostile_archive(path, {"privca.db": ledger, name: b"planted\n"}, passphrase, kind=kind)
    target = tmp_path / "restore-here" / "store"
    target.parent.mkdir()
    before = snapshot(tmp_path)
    result = cli("restore", path, "--store", target)
    assert result.exit_code == 14 and message in result.stderr, result.stderr
    assert snapshot(tmp_path) == before
    assert not Path("/tmp/privca-absolute.txt").exists()


def test_a_manifest_that_lies_is_refused(store_path: Path, passphrase: Any, cli: Any, tmp_path: Path) -> None:
    path = tmp_path / "lying.pcabk"
    _hostile_archive(path, {"privca.db": (store_path / "privca.db").read_bytes()}, passphrase, lie=True)
    result = cli("restore", path, "--store", tmp_path / "s")
    assert result.exit_code == 14 and "does not match its manifest checksum" in result.stderr
    assert not (tmp_path / "s").exists()


def test_an_archive_whose_store_does_not_verify_restores_nothing(store_path: Path, passphrase: Any, cli: Any,
                                                                 tmp_path: Path) -> None:
    """Authenticated and well-formed, but the ledger inside was tampered with before the backup: restore runs
    verify on what it extracted and refuses to put it in place."""
    conn = sqlite3.connect(store_path / "privca.db")
    conn.execute("UPDATE events SET actor = 'someone-else' WHERE id = 1")
    conn.commit()
    conn.close()
    path = tmp_path / "tampered.pcabk"
    assert cli("backup", path, "--store", store_path).exit_code == 0
    before = snapshot(tmp_path)
    result = cli("restore", path, "--store", tmp_path / "s")
    assert result.exit_code == 14 and "the restored store does not verify" in result.stderr
    assert "event #1: was edited" in result.stderr
    assert snapshot(tmp_path) == before


def test_backups_taken_while_issuing_are_consistent(store_path: Path, ec_key: Any, tmp_path: Path, cli: Any) -> None:
    """A writer issues batches while backups are taken; every backup restores into a store that verifies, holding
    whole batches only (each row with its issue event)."""
    batches = []
    for b in range(4):
        folder = tmp_path / f"csrs{b}"
        folder.mkdir()
        for n in range(30):
            name = f"w{b}-{n}.example.com"
            (folder / f"{name}.csr").write_bytes(build_csr(ec_key, cn=name, sans=[name]).public_bytes(
                serialization.Encoding.PEM))
        batches.append(sorted(folder.glob("*.csr")))
    env = {**os.environ, "PRIVCA_STORE": str(store_path)}
    script = "; ".join(
        f"subprocess.run([sys.executable, '-m', 'privca', 'issue', *{list(map(str, batch))!r}, '--out', "
        f"{str(tmp_path / f'out{b}')!r}], check=True)" for b, batch in enumerate(batches))
    writer = subprocess.Popen([sys.executable, "-c", f"import subprocess, sys; {script}"], env=env)
    archives = []
    try:
        for k in range(4):
            path = tmp_path / f"during{k}.pcabk"
            result = subprocess.run([sys.executable, "-m", "privca", "backup", str(path)], env=env,
                                    capture_output=True, text=True, timeout=120)
            assert result.returncode == 0, result.stderr
            archives.append(path)
    finally:
        assert writer.wait(timeout=300) == 0
    counts = set()
    for k, path in enumerate(archives):
        target = tmp_path / f"restored{k}"
        result = cli("restore", path, "--store", target, "--json")
        assert result.exit_code == 0, result.stderr
        certificates = json.loads(result.stdout)["certificates"]
        assert certificates % 30 == 0  # whole batches only
        counts.add(certificates)
        conn = sqlite3.connect(target / "privca.db")
        issued = conn.execute("SELECT count(*) FROM events WHERE action = 'issue'").fetchone()[0]
        conn.close()
        assert issued == certificates
    assert ledger_counts(store_path)[0] == 120


def test_a_planted_key_file_no_ca_uses_is_refused(store_path: Path, passphrase: Any, cli: Any, tmp_path: Path) -> None:
    """A crafted archive that adds a key file beside the real ones: restore names it and restores nothing."""
    members = {"privca.db": (store_path / "privca.db").read_bytes()}
    for key in sorted((store_path / "keys").iterdir()):
        members[f"keys/{key.name}"] = key.read_bytes()
    members["keys/extra.key.pem"] = members["keys/root-1.key.pem"]
    path = tmp_path / "planted.pcabk"
    _hostile_archive(path, members, passphrase)
    before = snapshot(tmp_path)
    result = cli("restore", path, "--store", tmp_path / "s")
    assert result.exit_code == 14, result.stderr
    assert "holds key files that no CA in its ledger uses (keys/extra.key.pem)" in result.stderr
    assert snapshot(tmp_path) == before
    # the control: the same archive without the extra key restores
    del members["keys/extra.key.pem"]
    _hostile_archive(path, members, passphrase)
    assert cli("restore", path, "--store", tmp_path / "s").exit_code == 0


def test_restore_names_the_store_profiles_it_brings_back(store_path: Path, cli: Any, tmp_path: Path) -> None:
    """Store profiles decide what gets issued, so restore says which ones the archive brought (and escapes them)."""
    profiles = store_path / "profiles"
    profiles.mkdir(exist_ok=True)
    (profiles / "lab-server.toml").write_text(
        'name = "lab-server"\ndescription = "lab"\nextends = "expressway-server"\n')
    archive = tmp_path / "with-profile.pcabk"
    assert cli("backup", archive, "--store", store_path).exit_code == 0
    result = cli("restore", archive, "--store", tmp_path / "s")
    assert result.exit_code == 0, result.stderr
    assert "Store profiles restored: lab-server.toml" in result.stdout
    as_json = cli("restore", archive, "--store", tmp_path / "t", "--json")
    assert json.loads(as_json.stdout)["profiles"] == ["lab-server.toml"]
    # the control: an archive without store profiles says nothing about them
    shutil.rmtree(profiles)
    plain = tmp_path / "plain.pcabk"
    assert cli("backup", plain, "--store", store_path).exit_code == 0
    quiet = cli("restore", plain, "--store", tmp_path / "u")
    assert quiet.exit_code == 0 and "Store profiles restored" not in quiet.stdout


def test_a_decompression_bomb_is_refused_before_it_fills_the_disk(store_path: Path, passphrase: Any, cli: Any,
                                                                  tmp_path: Path, monkeypatch: pytest.MonkeyPatch
                                                                  ) -> None:
    from privca.maintenance import backup

    monkeypatch.setattr(backup, "INFLATION_MARGIN", 1 << 20)  # keep the bomb small: 1 MiB beyond 32x the archive
    path = tmp_path / "bomb.pcabk"
    _hostile_archive(path, {"privca.db": (store_path / "privca.db").read_bytes(),
                            "notes/zeros.bin": bytes(64 << 20)}, passphrase)
    assert path.stat().st_size < (1 << 20)
    before = snapshot(tmp_path)
    result = cli("restore", path, "--store", tmp_path / "s")
    assert result.exit_code == 14 and "decompression bomb" in result.stderr, result.stderr
    assert snapshot(tmp_path) == before


@pytest.mark.parametrize("name", [".hidden", "keys/.key.pem", "profiles/-rf.toml"])
def test_hidden_and_dash_names_are_refused(store_path: Path, passphrase: Any, cli: Any, tmp_path: Path,
                                           name: str) -> None:
    path = tmp_path / "dots.pcabk"
    _hostile_archive(path, {"privca.db": (store_path / "privca.db").read_bytes(), name: b"x"}, passphrase)
    result = cli("restore", path, "--store", tmp_path / "s")
    assert result.exit_code == 14 and "unsafe or repeated path" in result.stderr, result.stderr
    assert not (tmp_path / "s").exists()


def test_a_fifo_given_as_the_archive_is_refused_without_hanging(cli: Any, tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pcabk"
    os.mkfifo(fifo)
    result = cli("restore", fifo, "--store", tmp_path / "s")
    assert result.exit_code == 14 and "not a regular file" in result.stderr, result.stderr

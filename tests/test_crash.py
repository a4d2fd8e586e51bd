"""kill -9 at random points: afterwards the store is whole and the disk and the ledger agree.

The harness is parameterised by the command to kill (``CRASH_CASES``): batch issuance, CRL generation with
``--out`` and the rotation of the issuing CA. Each case builds the command line of one run, says where that run
writes its temporary files, and what must hold after a kill and at the end. Half of the kills land at a random
time in the command's life; the other half are aimed at the dangerous stretch: a random few milliseconds after
the command's write journal appears, or right after its first temporary file does (files being written, the
ledger committing, files being renamed).

For every case: CRL numbers never go backwards, every CA row has its key file and every key file in the store
belongs to a CA row (or to the journal of the interrupted write that made it, which recovery undoes).

After every kill, before any recovery: every certificate file on disk is in the ledger (files are renamed into
place only after the ledger commits), and ``verify`` reports leftovers exactly when a journal or temporary file
was left. Recovery alternates between ``verify --repair`` and the next command, which finishes or undoes
leftovers itself; some leftovers are deliberately left for the next killed command, so recovery is killed too.
At the end a plain ``privca verify`` passes and the ledger and the disk hold the same certificates.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from conftest import PASSPHRASE, build_csr

KILLS = 24
BATCH = 8


@dataclass
class CrashCase:
    name: str
    #: (iteration, workspace) -> privca arguments for one run
    command: Callable[[int, Path], list[str]]
    #: (iteration, workspace) -> the folder where that run writes its temporary files
    temp_folder: Callable[[int, Path], Path]
    #: workspace -> leaf certificate files on disk
    certificates_on_disk: Callable[[Path], list[Path]]
    #: the store the case runs on: "rsa" (the session store) or "ec" (fast keys, for rotation)
    store: str = "rsa"
    #: (store, workspace) -> after a kill, before recovery: assert what must hold; True if the kill left work
    #: for recovery (journals, temporary files, CRL files behind the ledger)
    after_kill: Callable[[Path, Path], bool] | None = None
    #: (store, workspace) -> after the final run and verify: assert that the disk and the ledger agree
    at_end: Callable[[Path, Path], None] | None = None
    #: (environment, store, workspace) -> a recovery step beside ``verify --repair`` (e.g. ``privca publish``)
    recover: Callable[[dict[str, str], Path, Path], None] | None = None
    #: where the kills are aimed, in turn (see _kill_at_random)
    aims: tuple[str, ...] = ("random", "journal", "random", "temp")


def _issue_command(i: int, work: Path) -> list[str]:
    csrs = sorted((work / "csrs" / f"b{i % 6}").glob("*.csr"))
    # A new nested folder each run, so that rolling back must also remove the folders the run created.
    return ["issue", *map(str, csrs), "--out", str(work / "out" / f"run{i}" / "certs")]


def _issued_leaves(work: Path) -> list[Path]:
    return [p for p in (work / "out").rglob("*.pem") if ".chain" not in p.name and ".fullchain" not in p.name
            and ".privca-tmp-" not in p.name]


def _crl_command(i: int, work: Path) -> list[str]:
    return ["crl", "--out", str(work / "crl")]


def _rotate_command(i: int, work: Path) -> list[str]:
    return ["rotate", "intermediate", "--issuing-cn", f"Crash Issuing {i}"]


def _no_leaves(work: Path) -> list[Path]:
    return []


def _crl_files_after_kill(store_path: Path, work: Path) -> bool:
    """Every CRL file in --out is a whole CRL signed by its CA, never newer than the ledger's; returns whether
    the kill left the folder behind the ledger (a temporary file, an older CRL, or a .crl and .pem that differ)."""
    behind = any(".privca-tmp-" in p.name for p in (work / "crl").glob(".*"))
    latest = _latest_crls(store_path)
    for name, (number, der) in latest.items():
        on_disk = _crl_files(work / "crl", name, store_path)
        if on_disk is None:
            behind = True
            continue
        disk_number, disk_der = on_disk
        assert disk_number <= number, f"{name}: CRL #{disk_number} on disk is ahead of the ledger's #{number}"
        behind |= disk_der != der
    return behind


def _crl_files(folder: Path, name: str, store_path: Path) -> tuple[int, bytes] | None:
    """(CRL number, DER) of ``<name>.crl`` in ``folder`` after checking it whole and signed by its CA; None when
    it is not there yet. A .crl.pem beside it holds the same CRL or an older one (it is written second)."""
    der_path = folder / f"{name}.crl"
    if not der_path.exists():
        return None
    crl = x509.load_der_x509_crl(der_path.read_bytes())
    ca_cert = _ca_certificate(store_path, name)
    assert crl.is_signature_valid(ca_cert.public_key()), f"{der_path}: signature does not verify"
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    pem_path = folder / f"{name}.crl.pem"
    if pem_path.exists():
        pem = x509.load_pem_x509_crl(pem_path.read_bytes())
        assert pem.is_signature_valid(ca_cert.public_key())
        assert pem.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number <= number
    return number, der_path.read_bytes()


def _crl_files_at_end(store_path: Path, work: Path) -> None:
    from privca.revocation.revoke import crl_pem

    assert [p for p in (work / "crl").iterdir() if ".privca-tmp-" in p.name] == []
    for name, (_, der) in _latest_crls(store_path).items():
        assert (work / "crl" / f"{name}.crl").read_bytes() == der
        assert (work / "crl" / f"{name}.crl.pem").read_bytes() == crl_pem(der)


def _publish_completes(env: dict[str, str], store_path: Path, work: Path) -> None:
    """``privca publish`` writes every CA's latest CRL from the ledger, whatever a killed ``crl`` left in --out."""
    done = subprocess.run([sys.executable, "-m", "privca", "publish", str(work / "pub")], env=env,
                          capture_output=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for name, (_, der) in _latest_crls(store_path).items():
        assert (work / "pub" / "crl" / f"{name}.crl").read_bytes() == der  # the CRL URL's path under DIR


def _one_issuing_ca(store_path: Path, work: Path) -> bool:
    """Exactly one CA issues; returns whether the kill left a key file without its CA row (journaled)."""
    assert len(_query(store_path, "SELECT id FROM cas WHERE role = 'issuing' AND status = 'active'")) == 1
    refs = {row[0] for row in _query(store_path, "SELECT key_ref FROM cas")}
    orphan = any(f"keys/{path.name}" not in refs for path in (store_path / "keys").glob("*.key.pem"))
    return orphan


def _rotations_at_end(store_path: Path, work: Path) -> None:
    names = [row[0] for row in _query(store_path, "SELECT subject FROM cas WHERE role = 'issuing'")]
    assert len(names) == len(set(names)) >= 3  # the first, the unkilled first run, the final run at least


CRASH_CASES = [
    CrashCase("issue", _issue_command, lambda i, work: work / "out" / f"run{i}", _issued_leaves),
    CrashCase("crl", _crl_command, lambda i, work: work / "crl", _no_leaves, store="ec",
              after_kill=_crl_files_after_kill, at_end=_crl_files_at_end, recover=_publish_completes,
              aims=("random", "temp")),
    CrashCase("rotate", _rotate_command, lambda i, work: work.parent / "ecstore" / "keys", _no_leaves, store="ec",
              after_kill=_one_issuing_ca, at_end=_rotations_at_end),
]


@pytest.fixture(scope="module")
def _ec_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A store with P-256 CA keys: a rotation generates a key on every run, which RSA-3072 would make slow."""
    path = tmp_path_factory.mktemp("ec") / "store"
    made = subprocess.run([sys.executable, "-m", "privca", "init", "--store", str(path), "--key-type", "ec:secp256r1",
                           "--root-cn", "Crash Root CA", "--issuing-cn", "Crash Issuing CA 1", "--org", "Example Ltd",
                           "--crl-url", "http://pki.example.test/crl"], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PRIVCA_PASSPHRASE": PASSPHRASE,
                               "XDG_CONFIG_HOME": str(path.parent / "user-config")})  # this store's own user
    assert made.returncode == 0, made.stderr
    return path


@pytest.fixture
def workspace(tmp_path: Path, ec_key: Any) -> Path:
    work = tmp_path / "work"
    for b in range(6):
        folder = work / "csrs" / f"b{b}"
        folder.mkdir(parents=True)
        for n in range(BATCH):
            name = f"c{b}-{n}.example.com"
            (folder / f"c{b}-{n}.csr").write_bytes(
                build_csr(ec_key, cn=name, sans=[name]).public_bytes(serialization.Encoding.PEM))
    (work / "out").mkdir()
    return work


def _query(store_path: Path, sql: str) -> list[tuple[Any, ...]]:
    import sqlite3

    conn = sqlite3.connect(store_path / "privca.db")
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def _ledger_fingerprints(store_path: Path) -> set[str]:
    return {row[0] for row in _query(store_path, "SELECT fingerprint_sha256 FROM certificates")}


def _latest_crls(store_path: Path) -> dict[str, tuple[int, bytes]]:
    return {name: (number, bytes(der)) for name, number, der in _query(
        store_path, "SELECT cas.name, crls.crl_number, crls.der FROM crls JOIN cas ON cas.id = crls.ca_id")}


def _ca_certificate(store_path: Path, name: str) -> x509.Certificate:
    [(pem,)] = _query(store_path, f"SELECT pem FROM cas WHERE name = '{name}'")
    return x509.load_pem_x509_certificate(pem.encode())


def _disk_fingerprints(files: list[Path]) -> set[str]:
    from privca.authority.ca import fingerprint

    return {fingerprint(x509.load_pem_x509_certificate(path.read_bytes())) for path in files}


def _leftovers(store_path: Path, work: Path) -> list[Path]:
    """What ``privca verify`` must report: journals, and temporary files in the store and in the folders the
    ledger names. (A CRL's --out folder is not in the ledger: the next ``privca crl`` or ``publish`` tidies it.)"""
    return sorted([*(store_path / "pending").iterdir(), *(p for p in store_path.rglob("*") if ".privca-tmp-" in p.name),
                   *(p for p in work.rglob("*") if ".privca-tmp-" in p.name and (work / "crl") not in p.parents)])


def _check_crl_numbers(store_path: Path, seen: dict[str, int]) -> None:
    """CRL numbers never go backwards, and a CA's number and its latest CRL commit together."""
    latest = {name: number for name, (number, _) in _latest_crls(store_path).items()}
    for name, number in _query(store_path, "SELECT name, crl_number FROM cas"):
        assert number >= seen.get(name, 0), f"{name}: CRL number went back from {seen[name]} to {number}"
        assert latest.get(name, 0) == number, (name, number, latest.get(name))
        seen[name] = number


def _check_key_files(store_path: Path) -> None:
    """Every CA row has its key file; a key file no CA row names is one that an unfinished journal names (the
    rotation or init that wrote it died before its commit; recovery removes it)."""
    import json

    refs = {row[0] for row in _query(store_path, "SELECT key_ref FROM cas")}
    for ref in refs:
        assert (store_path / ref).is_file(), f"CA key {ref} is missing"
    journaled = set()
    for journal in (store_path / "pending").glob("*.json"):
        journaled |= {Path(e["final"]).resolve() for e in json.loads(journal.read_text())["entries"]}
    for key_file in (store_path / "keys").glob("*.key.pem"):
        assert (f"keys/{key_file.name}" in refs or key_file.resolve() in journaled), \
            f"{key_file}: a key file no CA row names, and no journal accounts for it"


def _kill_at_random(args: list[str], env: dict[str, str], store_path: Path, rng: random.Random, aim: str,
                    duration: float, watch: Path) -> str:
    """Start privca, kill -9 it; returns where: 'finished' if it ended first, else 'killed'.

    ``aim``: "journal" kills a few ms after the write journal appears; "temp" right after the first temporary
    file appears under ``watch`` (the ledger commit and the renames are still to come); "random" at any time.
    """
    process = subprocess.Popen([sys.executable, "-m", "privca", *args], env=env, stdout=subprocess.DEVNULL,
                               stderr=subprocess.PIPE)
    if aim != "random":
        deadline = time.monotonic() + 30
        pending = store_path / "pending"
        while time.monotonic() < deadline and process.poll() is None:
            if aim == "journal" and any(name.endswith(".json") for name in os.listdir(pending)):
                break
            if aim == "temp" and any(".privca-tmp-" in path.name for path in watch.rglob(".*")):
                break
            time.sleep(0.0005)
        time.sleep(rng.uniform(0, 0.006 if aim == "journal" else 0.002))
    else:
        time.sleep(rng.uniform(0.05, 1.1) * duration)
    if process.poll() is not None:
        _, stderr = process.communicate()
        assert process.returncode == 0, stderr.decode()
        return "finished"
    process.send_signal(signal.SIGKILL)
    process.communicate()
    return "killed"


@pytest.mark.parametrize("case", CRASH_CASES, ids=lambda c: c.name)
def test_kill_9_at_random_points(case: CrashCase, store_path: Path, _ec_template: Path, workspace: Path,
                                 passphrase: Any) -> None:
    from privca.ledger.store import Store
    from privca.maintenance.verify import verify_store

    if case.store == "ec":
        store_path = workspace.parent / "ecstore"
        shutil.copytree(_ec_template, store_path)
    rng = random.Random(int.from_bytes(os.urandom(4), "big"))
    env = {**os.environ, "PRIVCA_STORE": str(store_path)}
    started = time.monotonic()
    first = subprocess.run([sys.executable, "-m", "privca", *case.command(100, workspace)], env=env,
                           capture_output=True, timeout=120)
    assert first.returncode == 0, first.stderr
    duration = time.monotonic() - started
    crl_numbers: dict[str, int] = {}
    _check_crl_numbers(store_path, crl_numbers)

    outcomes = []
    interrupted = 0
    # At least KILLS kills; on a busy machine more of them land between writes, so go on (up to twice as many)
    # until three have landed while files were being written.
    for i in range(2 * KILLS):
        if i >= KILLS and interrupted >= 3:
            break
        aim = case.aims[i % len(case.aims)]
        outcomes.append(_kill_at_random(case.command(i, workspace), env, store_path, rng, aim, duration,
                                        case.temp_folder(i, workspace)))
        # Before any recovery: a certificate on disk is always on record, CRL numbers only go up, and every key
        # file belongs to a CA row or to the journal of the write that died.
        assert _disk_fingerprints(case.certificates_on_disk(workspace)) <= _ledger_fingerprints(store_path)
        _check_crl_numbers(store_path, crl_numbers)
        _check_key_files(store_path)
        behind = case.after_kill(store_path, workspace) if case.after_kill else False
        store = Store(store_path)
        try:
            report = verify_store(store, passphrase=passphrase, skip=["keys"])
            left = _leftovers(store_path, workspace)
            interrupted += bool(left) or behind
            assert {f.check for f in report.findings} <= {"leftovers", "files"}, report.findings
            assert (not report.ok) == bool(left), (report.findings, left)
            if i % 3 == 0:
                repaired = verify_store(store, passphrase=passphrase, skip=["keys"], repair=True)
                assert repaired.ok, repaired.findings
                _assert_disk_matches_ledger(case, store_path, workspace)
                if case.recover is not None:
                    case.recover(env, store_path, workspace)
            # else: leave the leftovers to the next run (which may itself be killed while recovering them)
        finally:
            store.close()

    final = subprocess.run([sys.executable, "-m", "privca", *case.command(101, workspace)], env=env,
                           capture_output=True, timeout=120)
    assert final.returncode == 0, final.stderr  # its first step finishes or undoes whatever the kills left
    plain = subprocess.run([sys.executable, "-m", "privca", "verify"], env=env, capture_output=True, text=True,
                           timeout=300)
    assert plain.returncode == 0, plain.stdout + plain.stderr
    _assert_disk_matches_ledger(case, store_path, workspace)
    _check_crl_numbers(store_path, crl_numbers)
    _check_key_files(store_path)
    assert sorted((store_path / "keys").glob("*.key.pem")) == sorted(store_path / ref for (ref,) in _query(
        store_path, "SELECT key_ref FROM cas"))
    if case.at_end is not None:
        case.at_end(store_path, workspace)
    # The kills really did land in the middle of things, not only before or after.
    assert outcomes.count("killed") >= len(outcomes) // 2, outcomes
    assert interrupted >= 3, f"too few kills landed while files were being written ({interrupted})"


def _assert_disk_matches_ledger(case: CrashCase, store_path: Path, work: Path) -> None:
    assert _leftovers(store_path, work) == []
    on_disk = case.certificates_on_disk(work)
    assert _disk_fingerprints(on_disk) == _ledger_fingerprints(store_path)
    assert len(on_disk) == len(_ledger_fingerprints(store_path))
    # Folders of rolled-back runs are gone; every run folder that remains holds certificates.
    for run in (work / "out").iterdir():
        assert any(run.rglob("*.pem")), f"{run} was left empty by a rolled-back run"


def test_recovery_rolls_back_and_forward(store: Any, passphrase: Any, make_csr: Any, tmp_path: Path, now: Any) -> None:
    """The two recovery directions, made deterministic: a journal whose certificates committed is finished from
    the ledger (even when its temporary files are gone), one whose certificates did not is undone."""
    import privca.authority.signer as signer
    from privca.ledger.journal import recover

    csr = make_csr("one.csr")
    # Committed, then "killed" before the renames: the ledger has the row, the files are temporary (or missing).
    real_replace = os.replace

    def die_on_rename(src: Any, dst: Any) -> None:
        if ".privca-tmp-" in str(src) and str(dst).endswith(".pem"):
            raise KeyboardInterrupt  # the process dies here
        real_replace(src, dst)

    os.replace = die_on_rename  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            signer.issue(store, [csr], passphrase, now=now, out_dir=tmp_path / "fwd")
    finally:
        os.replace = real_replace  # type: ignore[assignment]
    temps = sorted((tmp_path / "fwd").glob(".*privca-tmp-*"))
    assert len(temps) == 3 and not (tmp_path / "fwd" / "one.pem").exists()
    temps[0].unlink()  # a power cut lost one temporary file: the ledger still has everything
    done = recover(store)
    assert [(d.kind, d.direction, d.files) for d in done] == [("issue", "forward", 3)]
    row = store.ledger._conn.execute("SELECT pem FROM certificates").fetchone()
    assert (tmp_path / "fwd" / "one.pem").read_text() == row["pem"]
    assert list((tmp_path / "fwd").glob(".*privca-tmp-*")) == [] and list(store.pending_dir.iterdir()) == []

    # Not committed: a run that died after writing its journal and a temporary file, before its transaction.
    from privca.common.fsutil import write_temp
    from privca.ledger.journal import open_journal

    folder = tmp_path / "back" / "deep"
    final = folder / "two.pem"
    with open_journal(store, "issue", [{"final": str(final), "tag": "deadbeef", "role": "cert"}],
                      created_dirs=[tmp_path / "back", folder], issuer_id=2):
        folder.mkdir(parents=True)
        write_temp(final, b"half a certificate", tag="deadbeef")
    # (the block ends without finish(): the journal stays, as after a kill)
    done = recover(store)
    assert [(d.kind, d.direction) for d in done] == [("issue", "back")]
    assert not (tmp_path / "back").exists() and list(store.pending_dir.iterdir()) == []


def test_a_journal_cut_off_while_being_written_is_a_leftover(store: Any, passphrase: Any) -> None:
    """Killed while writing its journal (before any other file): verify names it, --repair removes it."""
    from privca.maintenance.verify import verify_store

    scratch = store.pending_dir / ".issue-4242-0badf00d.tmp"
    scratch.write_text('{"kind": "iss')
    scratch.chmod(0o600)  # as privca creates it
    report = verify_store(store, passphrase=passphrase, skip=["keys"])
    assert [(f.check, f.subject) for f in report.findings] == [("leftovers", str(scratch))]
    assert verify_store(store, passphrase=passphrase, skip=["keys"], repair=True).ok
    assert not scratch.exists()


def test_recovery_never_overwrites_a_newer_certificate(store: Any, passphrase: Any, make_csr: Any, tmp_path: Path,
                                                       now: Any) -> None:
    """A run committed, then died before its renames; meanwhile another run replaced the same file (--force).
    Recovery must leave the newer certificate in place and only drop the stale temporary files."""
    import privca.authority.signer as signer
    from privca.ledger.journal import recover

    csr = make_csr("same.csr")
    real_replace = os.replace

    def die_on_rename(src: Any, dst: Any) -> None:
        if ".privca-tmp-" in str(src) and str(dst).endswith(".pem"):
            raise KeyboardInterrupt
        real_replace(src, dst)

    os.replace = die_on_rename  # type: ignore[assignment]
    try:
        with pytest.raises(KeyboardInterrupt):
            signer.issue(store, [csr], passphrase, now=now, out_dir=tmp_path / "out")
    finally:
        os.replace = real_replace  # type: ignore[assignment]
    # The journal of the dead run is still there; hide it while the newer run writes (as if that run's process
    # were still alive), then let recovery see it.
    journals = list(store.pending_dir.glob("*.json"))
    parked = [path.rename(tmp_path / path.name) for path in journals]
    newer = signer.issue(store, [csr], passphrase, now=now, out_dir=tmp_path / "out", force=True)
    for path in parked:
        path.rename(store.pending_dir / path.name)
    assert [d.direction for d in recover(store)] == ["back"]
    assert (tmp_path / "out" / "same.pem").read_text() == store.ledger._conn.execute(
        "SELECT pem FROM certificates WHERE serial = ltrim(?, '0')", (newer[0].certificate.serial,)).fetchone()[0]
    assert list((tmp_path / "out").glob(".*privca-tmp-*")) == []


def test_a_rotation_killed_before_its_commit_leaves_a_key_that_recovery_removes(
        store: Any, passphrase: Any, now: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The key file is on disk before the CA row commits. Killed in between: the journal says which file this run
    wrote, so the next rotation (or verify --repair) removes it, and the generation's name is free again. A key
    file no journal accounts for is reported and never deleted."""
    from privca.keys.keystore import NewCAKey
    from privca.ledger import events
    from privca.authority.rotation import rotate_intermediate
    from privca.maintenance.verify import verify_store

    def killed(*args: Any, **kwargs: Any) -> None:
        raise SystemExit(137)  # the kill lands after the key file is saved, before the commit

    monkeypatch.setattr(events, "record", killed)
    # After a real kill no undo code runs; only the journal's lock goes with the process.
    monkeypatch.setattr(NewCAKey, "discard", lambda self: self._journal_scope.close())
    with pytest.raises(SystemExit):
        rotate_intermediate(store, passphrase, now=now, issuing_cn="Killed Issuing CA")
    monkeypatch.undo()
    # The kill left: the key file, its journal, and no CA row (the transaction rolled back).
    orphan = store.keys_dir / "issuing-2.key.pem"
    journals = list(store.pending_dir.glob("ca-key-*.json"))
    assert orphan.exists() and len(journals) == 1
    assert store.ledger._conn.execute("SELECT count(*) FROM cas WHERE name = 'issuing-2'").fetchone()[0] == 0
    report = verify_store(store, passphrase=passphrase, skip=["keys"])
    assert [(f.check, f.subject) for f in report.findings] == [("leftovers", str(journals[0]))]
    # The next rotation undoes it first, then takes the same generation with a new key.
    rotated = rotate_intermediate(store, passphrase, now=now, issuing_cn="Next Issuing CA")
    assert rotated.issuing.name == "issuing-2" and list(store.pending_dir.iterdir()) == []
    assert orphan.exists() and verify_store(store, passphrase=passphrase).ok  # the new CA's key, which matches

    # A key file no journal accounts for (e.g. a ledger restored from an older backup): reported, kept.
    stray = store.keys_dir / "issuing-9.key.pem"
    stray.write_bytes(orphan.read_bytes())
    stray.chmod(0o600)
    repaired = verify_store(store, passphrase=passphrase, skip=["keys"], repair=True)
    assert [(f.check, f.subject) for f in repaired.findings] == [("leftovers", str(stray))]
    assert stray.exists()

"""A wrong clock never signs: before the CA begins, or clearly before the newest ledger event, every signing
command is refused with one line and changes nothing; a CRL's content depends only on its own time.

In-process tests pass ``now`` to the library (the CLI reads the clock in one place, privca.cli.common.now);
one test runs the real CLI under Debian's faketime, as a wrong system clock would.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509

from conftest import NOW, snapshot
from privca.errors import ClockError
from privca.common.serials import ledger_serial
from privca.ledger import certificates, crls, events
from privca.ledger.cas import active as active_ca
from privca.ledger.events import CLOCK_OVERRIDE_ENV, CLOCK_TOLERANCE

EPOCH_DAY = datetime(1970, 1, 2, tzinfo=timezone.utc)


def _issue(store: Any, make_csr: Any, passphrase: Any, now: datetime, out: Path, name: str = "node") -> list:
    from privca.authority.signer import issue

    csr = make_csr(f"{name}.csr", cn=f"{name}.example.com", sans=[f"{name}.example.com"])
    return [item.to_json() for item in issue(store, [csr], passphrase, now=now, out_dir=out)]


def test_issue_before_the_ca_begins_is_refused(store: Any, store_path: Path, make_csr: Any, passphrase: Any,
                                               tmp_path: Path) -> None:
    before = snapshot(store_path)
    for moment in (EPOCH_DAY, NOW - timedelta(days=2)):  # 1970, and a day before the CA was made
        with pytest.raises(ClockError, match="before CA issuing-1 even begins"):
            _issue(store, make_csr, passphrase, moment, tmp_path / "out")
    assert snapshot(store_path) == before and not (tmp_path / "out").exists()
    record = _issue(store, make_csr, passphrase, NOW, tmp_path / "out")[0]  # the control: the right time signs
    assert datetime.fromisoformat(record["not_before"]) >= active_ca(store.ledger, "issuing").not_before


def test_every_signing_command_refuses_a_clock_well_behind_the_ledger(store: Any, store_path: Path, make_csr: Any,
                                                                      passphrase: Any, tmp_path: Path) -> None:
    from privca.authority.rotation import rotate_intermediate, rotate_root
    from privca.lifecycle.renewal import renew
    from privca.revocation.revoke import issue_crls, revoke

    record = _issue(store, make_csr, passphrase, NOW, tmp_path / "out")[0]
    issue_crls(store, passphrase, now=NOW + timedelta(days=1))  # the newest event: a CRL a day later
    behind = NOW + timedelta(days=1) - CLOCK_TOLERANCE - timedelta(minutes=1)
    before = snapshot(store_path, tmp_path / "out")
    attempts = {
        "issue": lambda: _issue(store, make_csr, passphrase, behind, tmp_path / "out2", "late"),
        "revoke": lambda: revoke(store, record["serial"], "keyCompromise", now=behind),
        "crl": lambda: issue_crls(store, passphrase, now=behind),
        "rotate intermediate": lambda: rotate_intermediate(store, passphrase, now=behind),
        "rotate root": lambda: rotate_root(store, passphrase, now=behind),
        "renew": lambda: renew(store, record["serial"], passphrase, now=behind, out_dir=tmp_path / "out3"),
    }
    refused = []
    for name, attempt in attempts.items():
        with pytest.raises(ClockError, match="the ledger's newest event is from") as caught:
            attempt()
        assert "\n" not in caught.value.one_line()
        refused.append(name)
    assert refused == list(attempts)
    assert snapshot(store_path, tmp_path / "out") == before
    assert not (tmp_path / "out2").exists() and not (tmp_path / "out3").exists()
    # The control: within the tolerance (a passphrase prompt, another process) the same commands work.
    within = NOW + timedelta(days=1) - CLOCK_TOLERANCE + timedelta(minutes=1)
    assert revoke(store, record["serial"], "keyCompromise", now=within)["status"] == "revoked"
    assert issue_crls(store, passphrase, now=within)


def test_revoking_before_the_certificate_begins_is_refused(store: Any, make_csr: Any, passphrase: Any,
                                                           tmp_path: Path) -> None:
    from privca.revocation.revoke import revoke

    record = _issue(store, make_csr, passphrase, NOW, tmp_path / "out")[0]
    with pytest.raises(ClockError):
        # Within the ledger tolerance, yet before the certificate's own notBefore (issued 5 minutes backdated).
        revoke(store, record["serial"], "keyCompromise", now=NOW - timedelta(minutes=6))
    assert certificates.by_serial(store.ledger, ledger_serial(record["serial"])).status.value == "valid"


def test_a_clock_that_ran_ahead_once_cannot_empty_the_next_crl(store: Any, make_csr: Any, passphrase: Any,
                                                               tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from privca.authority.signer import issue
    from privca.revocation.revoke import issue_crls, revoke

    csrs = [make_csr(f"n{i}.csr", cn=f"n{i}.example.com", sans=[f"n{i}.example.com"]) for i in range(100)]
    records = [item.to_json() for item in issue(store, csrs, passphrase, now=NOW, out_dir=tmp_path / "out", days=90)]
    for record in records:
        revoke(store, record["serial"], "keyCompromise", now=NOW)
    ahead = NOW + timedelta(days=400)  # past every certificate's expiry
    assert {r["ca"]: r["entries"] for r in issue_crls(store, passphrase, now=ahead)}["issuing-1"] == 0
    right = NOW + timedelta(hours=1)
    with pytest.raises(ClockError, match=CLOCK_OVERRIDE_ENV):
        issue_crls(store, passphrase, now=right)  # refused: the ledger holds an event from the future
    newest = events.newest_at(store.ledger)
    assert newest is not None
    monkeypatch.setenv(CLOCK_OVERRIDE_ENV, "2099-01-01T00:00:00Z")  # acknowledging another time changes nothing
    with pytest.raises(ClockError):
        issue_crls(store, passphrase, now=right)
    monkeypatch.setenv(CLOCK_OVERRIDE_ENV, newest)
    crls = {r["ca"]: r for r in issue_crls(store, passphrase, now=right)}
    assert crls["issuing-1"]["entries"] == 100  # every revoked certificate is back on the CRL
    monkeypatch.delenv(CLOCK_OVERRIDE_ENV)
    assert issue_crls(store, passphrase, now=right + timedelta(minutes=1))  # the right time is newest again


def test_a_crl_never_lists_a_revocation_after_its_this_update(store: Any, make_csr: Any, passphrase: Any,
                                                              tmp_path: Path) -> None:
    from privca.revocation.revoke import issue_crls, revoke

    records = _issue(store, make_csr, passphrase, NOW, tmp_path / "out")
    revoked_at = NOW + timedelta(minutes=30)
    revoke(store, records[0]["serial"], "keyCompromise", now=revoked_at)
    issue_crls(store, passphrase, now=revoked_at + timedelta(minutes=1))  # thisUpdate is backdated 5 minutes
    kept = crls.latest(store.ledger, active_ca(store.ledger, "issuing").id)
    assert kept is not None
    crl = x509.load_der_x509_crl(kept.der)
    assert len(crl) == 1
    assert all(entry.revocation_date_utc <= crl.last_update_utc for entry in crl)
    # A revocation recorded after this clock's now (it went back a little, within the tolerance): no CRL.
    with pytest.raises(ClockError, match="before a revocation the CRL lists"):
        issue_crls(store, passphrase, now=revoked_at - timedelta(minutes=2))


def test_the_cli_under_faketime_refuses_with_one_line(store_path: Path, make_csr: Any, tmp_path: Path) -> None:
    csr = make_csr("node.csr", cn="node.example.com", sans=["node.example.com"])
    env = {**os.environ, "PRIVCA_STORE": str(store_path), "FAKETIME_DONT_FAKE_MONOTONIC": "1"}
    before = snapshot(store_path)
    refused = []
    for args in (["issue", str(csr), "--out", str(tmp_path / "out")], ["crl", "--out", str(tmp_path / "crl")]):
        done = subprocess.run(["faketime", "1970-01-02 00:00:00", sys.executable, "-m", "privca", *args], env=env,
                              capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
        assert done.returncode == 15, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("Error: clock: this machine says 1970-01-02")
        refused.append(args[0])
    assert refused == ["issue", "crl"] and snapshot(store_path) == before
    done = subprocess.run([sys.executable, "-m", "privca", "issue", str(csr), "--out", str(tmp_path / "out")],
                          env=env, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert done.returncode == 0, done.stderr  # the control: the real clock signs

"""CA keys: encrypted at rest (PKCS#8, scrypt), owner-only, and the passphrase never written anywhere."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from conftest import PASSPHRASE, privca_subprocess, run_tool


def test_key_files_are_encrypted_pkcs8_and_owner_only(store_path: Path) -> None:
    keys = sorted((store_path / "keys").glob("*.key.pem"))
    assert [k.name for k in keys] == ["issuing-1.key.pem", "root-1.key.pem"]
    assert stat.S_IMODE(store_path.stat().st_mode) == 0o700
    assert stat.S_IMODE((store_path / "privca.db").stat().st_mode) == 0o600
    for key in keys:
        assert stat.S_IMODE(key.stat().st_mode) == 0o600
        text = key.read_text()
        assert text.startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
        with pytest.raises(TypeError):  # cryptography: "Password was not given but private key is encrypted"
            load_pem_private_key(text.encode(), None)
        assert load_pem_private_key(text.encode(), PASSPHRASE.encode()) is not None
        # OpenSSL reads it with the passphrase, and refuses without the right one (negative control).
        ok = run_tool("openssl", "pkey", "-in", key, "-passin", f"pass:{PASSPHRASE}", "-noout")
        assert ok.returncode == 0, ok.stderr
        bad = run_tool("openssl", "pkey", "-in", key, "-passin", "pass:wrong passphrase", "-noout")
        assert bad.returncode != 0
        parsed = run_tool("openssl", "asn1parse", "-in", key).stdout
        assert "scrypt" in parsed and "aes-256-cbc" in parsed


def test_passphrase_appears_in_no_store_file(store, passphrase, make_csr, now) -> None:
    from privca.authority.signer import issue

    issue(store, [make_csr()], passphrase, now=now)
    store.close()
    for path in store.path.rglob("*"):
        if path.is_file():
            assert PASSPHRASE.encode() not in path.read_bytes(), path


def test_passphrase_hides_itself() -> None:
    from privca.keys.material import Passphrase

    secret = Passphrase(b"hunter2 hunter2")
    assert "hunter2" not in repr(secret) and "hunter2" not in str(secret) and "hunter2" not in f"{secret}"


def test_passphrase_file_is_read_and_env_is_not_needed(cli, store_path: Path, make_csr, tmp_path: Path,
                                                       monkeypatch) -> None:
    monkeypatch.delenv("PRIVCA_PASSPHRASE")
    secret = tmp_path / "pass.txt"
    secret.write_text(PASSPHRASE + "\n")
    secret.chmod(0o600)  # privca refuses a passphrase file others can read
    os.chmod(secret, 0o600)
    assert cli("issue", make_csr(), "--store", store_path, "--passphrase-file", secret).exit_code == 0
    no_terminal = cli("issue", make_csr(), "--store", store_path)
    assert no_terminal.exit_code != 0 and "PRIVCA_PASSPHRASE" in no_terminal.stderr


def test_there_is_no_passphrase_option(cli) -> None:
    result = cli("issue", "x.csr", "--passphrase", PASSPHRASE)
    assert result.exit_code != 0  # a secret on the command line would be visible in ps and shell history


def test_world_readable_key_is_refused(cli, store_path: Path, make_csr) -> None:
    key = store_path / "keys" / "issuing-1.key.pem"
    os.chmod(key, 0o644)
    result = cli("issue", make_csr(), "--store", store_path)
    assert result.exit_code != 0 and "chmod 600" in result.stderr


def test_wrong_passphrase_shows_no_traceback_or_secret(store_path: Path, make_csr) -> None:
    result = privca_subprocess("issue", make_csr(), "--store", store_path,
                               env={"PRIVCA_PASSPHRASE": "a wrong but long passphrase"})
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and "a wrong but long" not in result.stderr
    assert result.stderr.startswith("Error: ") and "wrong passphrase" in result.stderr


def test_unlock_ahead_opens_the_same_key_and_only_for_what_it_began_with(store_path: Path, tmp_path: Path) -> None:
    """``privca issue`` begins the scrypt of the CA key on a thread while it imports the signing code; the key
    it gives must be the key file's, and anything that differs (passphrase, bytes, form) must take the usual
    way, with the usual error."""
    from cryptography.hazmat.primitives import serialization

    from privca.errors import KeyMaterialError
    from privca.keys.material import Passphrase, UnlockAhead, load_private_key

    path = store_path / "keys" / "issuing-1.key.pem"
    right, wrong = Passphrase(PASSPHRASE.encode()), Passphrase(b"a wrong but long passphrase")
    usual = load_private_key(path, right)
    ahead = UnlockAhead(path, right)
    early = ahead.key(path.read_bytes(), right, True)
    assert early is not None and early.private_numbers() == usual.private_numbers()
    assert load_private_key(path, right, ahead=UnlockAhead(path, right)).private_numbers() == usual.private_numbers()
    # Negative controls: a wrong passphrase, another passphrase than the one begun with, other bytes.
    assert UnlockAhead(path, wrong).key(path.read_bytes(), wrong, True) is None
    with pytest.raises(KeyMaterialError, match="wrong passphrase"):
        load_private_key(path, wrong, ahead=UnlockAhead(path, wrong))
    assert UnlockAhead(path, wrong).key(path.read_bytes(), right, True) is None
    assert load_private_key(path, right, ahead=UnlockAhead(path, wrong)).private_numbers() == usual.private_numbers()
    other = store_path / "keys" / "root-1.key.pem"
    assert UnlockAhead(other, right).key(path.read_bytes(), right, True) is None
    # A key file in another form (cryptography's own PKCS#8 encryption) is left to cryptography, and still opens.
    foreign = tmp_path / "foreign.key.pem"
    foreign.write_bytes(usual.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                            serialization.BestAvailableEncryption(PASSPHRASE.encode())))
    foreign.chmod(0o600)
    assert UnlockAhead(foreign, right).key(foreign.read_bytes(), right, True) is None
    opened = load_private_key(foreign, right, ahead=UnlockAhead(foreign, right))
    assert opened.private_numbers() == usual.private_numbers()


def test_passphrase_from_a_pipe_is_read_once(store_path: Path, make_csr, tmp_path: Path) -> None:
    """The key is unlocked ahead with the passphrase the command then uses: a pipe (``<(pass show ca)``) is
    read once. A second read would wait for a writer that never comes (the timeout is the negative control)."""
    import subprocess
    import sys
    import threading

    fifo = tmp_path / "passphrase.fifo"
    os.mkfifo(fifo, 0o600)

    def feed() -> None:
        with open(fifo, "w") as pipe:
            pipe.write(PASSPHRASE + "\n")

    threading.Thread(target=feed, daemon=True).start()
    env = {key: value for key, value in os.environ.items() if key != "PRIVCA_PASSPHRASE"}
    result = subprocess.run([sys.executable, "-m", "privca", "issue", str(make_csr()), "--store", str(store_path),
                             "--passphrase-file", str(fifo)], capture_output=True, text=True, env=env, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "Issued " in result.stdout

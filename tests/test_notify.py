"""privca notify against real receivers: an aiosmtpd SMTP server with STARTTLS and AUTH, and a local HTTP server
standing in for the Webex, Teams and Slack incoming webhooks and a generic JSON webhook.

Negative controls: nothing is sent when nothing is due, nothing is re-sent within the interval, a server without
STARTTLS gets nothing, and secrets never appear in the configuration, output or errors.
"""

from __future__ import annotations

import json
import os
import socket
import ssl
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

SMTP_PASSWORD = "s3cret-smtp-Pa55"
HOOK_TOKEN = "T0KEN-in-the-url"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def receiver() -> Iterator[dict[str, Any]]:
    """A local HTTP server that records each POST (path and JSON body), like the webhook services."""
    received: list[tuple[str, Any]] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.path, json.loads(body)))
            status = 500 if self.path.startswith("/broken") else 200
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield {"url": f"http://127.0.0.1:{server.server_port}", "received": received}
    server.shutdown()
    server.server_close()


def tls_files(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "smtp test")])
    now = datetime.now(timezone.utc)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - timedelta(hours=1))
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), False)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .sign(key, hashes.SHA256()))
    cert_path, key_path = tmp_path / "smtp.pem", tmp_path / "smtp.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


@pytest.fixture
def smtp(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A real aiosmtpd server that requires STARTTLS, and AUTH only over TLS."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult, LoginPassword

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope)
            return "250 OK"

    def authenticator(server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any) -> Any:
        ok = isinstance(auth_data, LoginPassword) and auth_data.login == b"pki" and \
            auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    cert, key = tls_files(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port, tls_context=context, require_starttls=True,
                            authenticator=authenticator, auth_require_tls=True)
    controller.start()
    yield {"port": port, "cafile": cert, "messages": messages}
    controller.stop()


def write_secret(store_path: Path, name: str, value: str, mode: int = 0o600) -> str:
    folder = store_path / "secrets"
    folder.mkdir(mode=0o700, exist_ok=True)
    path = folder / name
    path.write_text(value + "\n")
    os.chmod(path, mode)
    return f"secrets/{name}"


def configure(store_path: Path, receiver: dict[str, Any], smtp: dict[str, Any] | None, **general: Any) -> None:
    lines = ["[notify]", "expiring_within_days = 30", "backup_max_age_hours = 48", "resend_after_hours = 24"]
    lines += [f"{key} = {value}" for key, value in general.items()]
    for kind in ("webex", "teams", "slack", "webhook"):
        secret = write_secret(store_path, kind, f"{receiver['url']}/{kind}/{HOOK_TOKEN}")
        lines += ["", "[[channel]]", f'name = "{kind}-room"', f'type = "{kind}"', f'url_file = "{secret}"']
    if smtp is not None:
        secret = write_secret(store_path, "smtp", SMTP_PASSWORD)
        lines += ["", "[[channel]]", 'name = "mail"', 'type = "smtp"', 'host = "127.0.0.1"', f"port = {smtp['port']}",
                  'from = "pki@example.test"', 'to = ["uc-admins@example.test"]', 'username = "pki"',
                  f'password_file = "{secret}"', f'cafile = "{smtp["cafile"]}"']
    (store_path / "notify.toml").write_text("\n".join(lines) + "\n")


def run_notify(store_path: Path, now: datetime) -> tuple[int, str, str, dict[str, Any]]:
    """privca notify at ``now`` (the CLI reads the clock through privca.cli.common.now)."""
    import contextlib
    import io
    from unittest import mock

    from privca.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    with mock.patch("privca.cli.common.now", return_value=now), mock.patch("privca.cli.notify_cmd.now",
                                                                           return_value=now), \
            contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main(["notify", "--store", str(store_path), "--json"])
        except SystemExit as exc:
            code = int(exc.code or 0)
    text = out.getvalue()
    return code, text, err.getvalue(), json.loads(text) if text.strip().startswith("{") else {}


def make_everything_fresh(store: Any, passphrase: Any, now: datetime, tmp_path: Path) -> None:
    from privca.maintenance.backup import backup_store
    from privca.revocation.revoke import issue_crls

    issue_crls(store, passphrase, now=now)
    backup_store(store, tmp_path / "store.pcabk", passphrase, now=now)


def test_sends_once_to_every_channel_and_not_again_within_the_interval(
        store: Any, store_path: Path, receiver: dict[str, Any], smtp: dict[str, Any], tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    configure(store_path, receiver, smtp)
    store.close()
    code, text, err, report = run_notify(store_path, now)
    assert code == 0, err
    keys = [finding["key"] for finding in report["findings"]]
    assert "backup-old" in keys, keys  # this store was never backed up
    assert all(item["error"] is None and item["sent"] == keys for item in report["channels"]), report
    posted = {path.split("/")[1]: body for path, body in receiver["received"]}
    assert set(posted) == {"webex", "teams", "slack", "webhook"}
    assert "never backed up" in posted["webex"]["markdown"]
    assert "never backed up" in posted["slack"]["text"]
    card = posted["teams"]["attachments"][0]
    assert card["contentType"] == "application/vnd.microsoft.card.adaptive"
    assert any("never backed up" in block["text"] for block in card["content"]["body"])
    assert [f["key"] for f in posted["webhook"]["findings"]] == keys
    assert len(smtp["messages"]) == 1
    mail = smtp["messages"][0]
    import email
    import email.policy

    parsed = email.message_from_bytes(mail.original_content, policy=email.policy.default)
    assert mail.rcpt_tos == ["uc-admins@example.test"] and "never backed up" in parsed.get_content()
    assert parsed["Subject"].startswith("privca: ")
    # Secrets are not echoed anywhere.
    for secret in (SMTP_PASSWORD, HOOK_TOKEN):
        assert secret not in text + err

    # Negative control: run again an hour later: nothing is re-sent on any channel.
    code, _, err, report = run_notify(store_path, now + timedelta(hours=1))
    assert code == 0 and all(item["sent"] == [] for item in report["channels"]), report
    assert len(receiver["received"]) == 4 and len(smtp["messages"]) == 1
    # After the interval, still due: sent again.
    code, _, _, report = run_notify(store_path, now + timedelta(hours=25))
    assert code == 0 and len(receiver["received"]) == 8 and len(smtp["messages"]) == 2


def test_nothing_is_sent_when_nothing_is_due(store: Any, store_path: Path, receiver: dict[str, Any],
                                             smtp: dict[str, Any], passphrase: Any, tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    make_everything_fresh(store, passphrase, now, tmp_path)
    store.close()
    configure(store_path, receiver, smtp)
    code, _, err, report = run_notify(store_path, now)
    assert code == 0, err
    assert report["findings"] == [] and all(item["sent"] == [] for item in report["channels"]), report
    assert receiver["received"] == [] and smtp["messages"] == []
    # Positive control in the same store: a CRL gone stale is found and sent, as critical.
    code, _, _, report = run_notify(store_path, now + timedelta(days=30))
    assert any(f["key"].startswith("crl-stale:") and f["severity"] == "critical" for f in report["findings"])
    assert len(smtp["messages"]) == 1


def test_a_failing_channel_keeps_its_findings_for_the_next_run(store: Any, store_path: Path,
                                                               receiver: dict[str, Any], tmp_path: Path) -> None:
    now = datetime.now(timezone.utc)
    secret = write_secret(store_path, "broken", f"{receiver['url']}/broken/{HOOK_TOKEN}")
    (store_path / "notify.toml").write_text(f'[[channel]]\nname = "room"\ntype = "webex"\nurl_file = "{secret}"\n')
    store.close()
    code, text, err, report = run_notify(store_path, now)
    assert code == 1 and "HTTP 500" in report["channels"][0]["error"] and HOOK_TOKEN not in text + err
    code, _, _, report = run_notify(store_path, now + timedelta(minutes=5))
    assert report["channels"][0]["sent"] == [] and "HTTP 500" in report["channels"][0]["error"]  # tried again
    assert len(receiver["received"]) == 2


def test_smtp_without_starttls_gets_nothing(store: Any, store_path: Path, receiver: dict[str, Any],
                                            tmp_path: Path) -> None:
    from aiosmtpd.controller import Controller

    messages: list[Any] = []

    class Handler:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
            messages.append(envelope)
            return "250 OK"

    port = free_port()
    controller = Controller(Handler(), hostname="127.0.0.1", port=port)  # plain SMTP, no TLS offered
    controller.start()
    try:
        (store_path / "notify.toml").write_text(
            f'[[channel]]\nname = "mail"\ntype = "smtp"\nhost = "127.0.0.1"\nport = {port}\n'
            'from = "pki@example.test"\nto = ["a@example.test"]\n')
        store.close()
        code, _, _, report = run_notify(store_path, datetime.now(timezone.utc))
    finally:
        controller.stop()
    assert code == 1 and "STARTTLS" in report["channels"][0]["error"] and messages == []


@pytest.mark.parametrize(("config", "message"), [
    ('[[channel]]\ntype = "webex"\nurl = "https://webexapis.com/v1/webhooks/incoming/T"\n', "is a secret"),
    ('[[channel]]\ntype = "smtp"\nhost = "h"\nfrom = "a@b"\nto = ["c@d"]\nusername = "u"\npassword = "p"\n',
     "is a secret"),
    ('[[channel]]\ntype = "pager"\n', "choose one of"),
    ('[[channel]]\ntype = "slack"\nurl_file = "secrets/open"\n', "owner-only"),
    ('[notify]\nresend_after_hours = -1\n[[channel]]\ntype = "slack"\nurl_env = "X"\n', "resend_after_hours"),
    ("[notify]\n", "no [[channel]]"),
])
def test_bad_configurations_are_refused_in_one_line(cli: Any, store_path: Path, config: str, message: str) -> None:
    write_secret(store_path, "open", "https://hooks.slack.com/services/T/B/X", mode=0o644)
    (store_path / "notify.toml").write_text(config)
    result = cli("notify", "--store", store_path)
    assert result.exit_code != 0 and message in result.stderr, result.stderr
    assert result.stderr.startswith("Error: ") and len(result.stderr.strip().splitlines()) == 1
    assert "Traceback" not in result.stderr and "T/B/X" not in result.stderr and '"p"' not in result.stderr
    assert not (store_path / "notify-state.json").exists()  # nothing recorded

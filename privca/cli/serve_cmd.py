"""privca serve: the CRL and OCSP HTTP service, with SCEP and EST enrollment when asked for."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets, note, now, open_store


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; put nginx in front for the outside.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.", min=0, max=65535)] = 8080,
    workers: Annotated[int, typer.Option("--workers", help="Worker processes (signing OCSP answers is CPU work: "
                                         "one per core).", min=1, max=64)] = 2,
    request_timeout: Annotated[float, typer.Option(
        "--request-timeout", help="Seconds a connection may take to send a whole request (idle ones included) "
        "before it is closed.", min=0.5, max=3600)] = 10.0,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    scep: Annotated[bool, typer.Option("--scep", help="Answer SCEP enrollment at /scep/<profile> (needs: privca "
                                       "enroll ra). See docs/enrollment.md.")] = False,
    enroll_profile: Annotated[str | None, typer.Option(
        "--enroll-profile", help="Profile for /cgi-bin/pkiclient.exe, the path IOS uses when its enrollment url "
        "has none.", show_default=False)] = None,
    approval_queue: Annotated[bool, typer.Option(
        "--approval-queue", help="Requests without a challenge password wait for privca enroll approve "
        "(else they are refused).")] = False,
    legacy_sha1: Annotated[bool, typer.Option("--legacy-sha1", help="Accept SHA-1 signed SCEP messages (older "
                                              "IOS, micromdm scepclient).")] = False,
    legacy_des: Annotated[bool, typer.Option("--legacy-des", help="Accept single-DES encrypted SCEP messages "
                                             "(56-bit keys: only for devices that cannot do better).")] = False,
    est: Annotated[bool, typer.Option("--est", help="Answer EST enrollment at /.well-known/est/<profile>/ over "
                                      "HTTPS (needs --https-port). See docs/enrollment.md.")] = False,
    https_port: Annotated[int | None, typer.Option(
        "--https-port", help="Also listen with TLS on this port (0 picks a free one), with --tls-cert and "
        "--tls-key.", min=0, max=65535, show_default=False)] = None,
    tls_cert: Annotated[Path | None, typer.Option(
        "--tls-cert", help="The HTTPS server certificate (PEM, followed by its chain), e.g. one privca issued "
        "under the expressway-server profile.", show_default=False)] = None,
    tls_key: Annotated[Path | None, typer.Option("--tls-key", help="Its private key (PEM, owner-only; may be "
                                                 "encrypted).", show_default=False)] = None,
    tls_passphrase_file: Annotated[Path | None, typer.Option(
        "--tls-passphrase-file", help="Read the passphrase of an encrypted --tls-key from this file (else "
        "$PRIVCA_TLS_PASSPHRASE).",
        show_default=False)] = None,
) -> None:
    """Serve each CA's CRL at the path of its CRL URL, and answer OCSP at the path of its OCSP URL.

    OCSP responses are signed by the CA itself from the live ledger: a revocation is answered at once. The CA
    passphrase is asked for once, at start-up, when a CA has an OCSP URL. Stop with Ctrl-C or SIGTERM (requests
    in flight are finished first). One JSON line per request goes to stderr. With --https-port the same answers
    are also served over TLS, and --est adds EST enrollment there (docs/enrollment.md).

    Examples:

        privca serve --port 8080

        privca ca show issuing-1 --pem > issuing.pem

        openssl ocsp -url http://127.0.0.1:8080/ocsp -issuer issuing.pem -cert expc.pem -CAfile chain.pem

        privca serve --scep --est --enroll-profile cube --https-port 8443 --tls-cert est.fullchain.pem --tls-key est.key
    """
    import logging
    import os
    import shutil
    import sys
    import tempfile

    from privca.errors import UsageError
    from privca.service.assemble import EnrollmentSettings, build_app
    from privca.service.server import Secure, ServerSettings, listen
    from privca.service.server import serve as run

    if (https_port is None) != (tls_cert is None) or (tls_cert is None) != (tls_key is None):
        raise UsageError("--https-port, --tls-cert and --tls-key go together")
    if est and https_port is None:
        raise UsageError("--est needs HTTPS: give --https-port, --tls-cert and --tls-key")
    settings = ServerSettings(host=host, port=port, workers=workers, request_timeout=request_timeout)
    target = open_store(store)
    metrics_dir = None
    if workers > 1:
        # OCSP answer counts of all workers, summed at each scrape; set before prometheus_client is imported.
        metrics_dir = tempfile.mkdtemp(prefix="privca-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir
    try:
        enrollment = EnrollmentSettings(scep=scep, est=est, default_profile=enroll_profile,
                                        approval_queue=approval_queue, allow_sha1=legacy_sha1, allow_des=legacy_des)
        app, live = build_app(target, ca_secrets(passphrase_file, pin_file, pkcs11_module), now, enrollment)
        secure = None
        if https_port is not None and tls_cert is not None and tls_key is not None:
            from privca.keys.material import secret_from_env_or_file
            from privca.ledger import cas
            from privca.service.tls import TlsFiles, server_context

            secret = secret_from_env_or_file(tls_passphrase_file, "PRIVCA_TLS_PASSPHRASE", "passphrase")
            context = server_context(TlsFiles(tls_cert, tls_key, secret),
                                     [ca.pem for ca in cas.all_cas(target.ledger)])
            secure = Secure(listen(ServerSettings(host=host, port=https_port, backlog=settings.backlog)), context)
        target.close()  # the workers open their own ledger connections; none may cross the fork
        sock = listen(settings)
        base = f"http://{host}:{sock.getsockname()[1]}"
        note(f"privca serve: listening on {base}")
        if secure is not None:
            note(f"privca serve: listening on https://{host}:{secure.sock.getsockname()[1]}")
            if est:
                note(f"  EST   https://{host}:{secure.sock.getsockname()[1]}/.well-known/est/<profile>/")
        snapshot = live.current()
        for path in sorted(snapshot.crl_routes):
            if not path.endswith(".pem"):
                note(f"  CRL   {base}{path}")
        for path in sorted(snapshot.ocsp_paths):
            note(f"  OCSP  {base}{path}")
        if not snapshot.ocsp_paths:
            note("  OCSP  off: no CA has an OCSP URL (privca ca set-url --ocsp-url ...)")
        if scep:
            note(f"  SCEP  {base}/scep/<profile>" + (f" and {base}/cgi-bin/pkiclient.exe (profile "
                                                      f"{enroll_profile})" if enroll_profile else ""))
        note(f"  also  {base}/health {base}/metrics")
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        for name in ("privca.access", "privca.service"):
            logger = logging.getLogger(name)
            logger.addHandler(handler)
            logger.setLevel(logging.INFO)
        run(app, sock, settings, secure)
    finally:
        if metrics_dir is not None:
            shutil.rmtree(metrics_dir, ignore_errors=True)
    note("privca serve: stopped")

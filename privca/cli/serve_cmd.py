"""privca serve: the CRL and OCSP HTTP service."""

from __future__ import annotations

from typing import Annotated

import typer

from privca.cli.common import PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets, note, now, open_store


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
) -> None:
    """Serve each CA's CRL at the path of its CRL URL, and answer OCSP at the path of its OCSP URL.

    OCSP responses are signed by the CA itself from the live ledger: a revocation is answered at once. The CA
    passphrase is asked for once, at start-up, when a CA has an OCSP URL. Stop with Ctrl-C or SIGTERM (requests
    in flight are finished first). One JSON line per request goes to stderr.

    Examples:

        privca serve --port 8080

        privca ca show issuing-1 --pem > issuing.pem

        openssl ocsp -url http://127.0.0.1:8080/ocsp -issuer issuing.pem -cert expc.pem -CAfile chain.pem
    """
    import logging
    import sys

    from privca.service.assemble import build_app
    from privca.service.server import ServerSettings, listen
    from privca.service.server import serve as run

    settings = ServerSettings(host=host, port=port, workers=workers, request_timeout=request_timeout)
    target = open_store(store)
    app, revocation = build_app(target, ca_secrets(passphrase_file, pin_file, pkcs11_module), now)
    sock = listen(settings)
    base = f"http://{host}:{sock.getsockname()[1]}"
    note(f"privca serve: listening on {base}")
    for path in sorted(revocation.crl_routes()):
        if not path.endswith(".pem"):
            note(f"  CRL   {base}{path}")
    for path in sorted(revocation.ocsp_paths):
        note(f"  OCSP  {base}{path}")
    if revocation.responder is None:
        note("  OCSP  off: no CA has an OCSP URL (privca ca set-url --ocsp-url ...)")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(message)s"))
    for name in ("privca.access", "privca.service"):
        logger = logging.getLogger(name)
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
    run(app, sock, settings)
    note("privca serve: stopped")

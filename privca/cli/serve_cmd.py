"""privca serve: the CRL and OCSP HTTP service."""

from __future__ import annotations

from typing import Annotated

import typer

from privca.cli.common import PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, ca_secrets, note, open_store


def serve(
    host: Annotated[str, typer.Option("--host", help="Address to listen on; put nginx in front for the outside.")]
    = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="TCP port; 0 picks a free one.", min=0, max=65535)] = 8080,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    pin_file: PinFileOption = None,
    pkcs11_module: Pkcs11ModuleOption = None,
) -> None:
    """Serve each CA's CRL at the path of its CRL URL, and answer OCSP at the path of its OCSP URL.

    OCSP responses are signed by the CA itself from the live ledger: a revocation is answered at once. The CA
    passphrase is asked for once, at start-up, when a CA has an OCSP URL. Stop with Ctrl-C.

    Examples:

        privca serve --port 8080

        privca ca show issuing-1 --pem > issuing.pem

        openssl ocsp -url http://127.0.0.1:8080/ocsp -issuer issuing.pem -cert expc.pem -CAfile chain.pem
    """
    from privca.service.server import make_server

    target = open_store(store)
    server, service = make_server(target, ca_secrets(passphrase_file, pin_file, pkcs11_module), host=host, port=port)
    base = f"http://{host}:{server.server_port}"
    note(f"privca serve: listening on {base}")
    for path in sorted(service.crl_routes()):
        if not path.endswith(".pem"):
            note(f"  CRL   {base}{path}")
    for path in sorted(service.ocsp_paths):
        note(f"  OCSP  {base}{path}")
    if service.responder is None:
        note("  OCSP  off: no CA has an OCSP URL (privca ca set-url --ocsp-url ...)")
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        note("privca serve: stopped")
    finally:
        server.server_close()

"""privca init: create the root and issuing CAs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, fingerprint_text,
                     note, now, open_store, passphrase_source, pin_source, print_json, sign_first_crls)


def init(
    root_cn: Annotated[str, typer.Option("--root-cn", help="Common name of the root CA, e.g. 'Example UC Root CA 2026'.")],
    issuing_cn: Annotated[str, typer.Option("--issuing-cn", help="Common name of the issuing CA; must differ from the root's.")],
    org: Annotated[str | None, typer.Option("--org", help="Organisation (O) for both CA names.")] = None,
    key_type: Annotated[
        str | None,
        typer.Option("--key-type", help="rsa:3072, rsa:4096, ec:secp256r1 or ec:secp384r1 for both CAs "
                     "[default: rsa:4096 root, rsa:3072 issuing]", show_default=False),
    ] = None,
    root_days: Annotated[int, typer.Option("--root-days", help="Root CA validity in days.")] = 7305,
    issuing_days: Annotated[int, typer.Option("--issuing-days", help="Issuing CA validity in days.")] = 3652,
    crl_url: Annotated[
        str | None,
        typer.Option("--crl-url", help="Base URL where CRLs will be published, e.g. http://pki.example.com/crl; "
                     "each CA's CRL is <base>/<ca>.crl and goes into the certificates it issues."),
    ] = None,
    ocsp_url: Annotated[str | None, typer.Option("--ocsp-url", help="OCSP responder URL for leaf certificates.")] = None,
    exist_ok: Annotated[bool, typer.Option("--exist-ok", help="Do nothing (exit 0) if the store already has a CA.")] = False,
    token_label: Annotated[
        str | None,
        typer.Option("--token-label", help="Keep the CA keys in this HSM token (PKCS#11), found by its label.",
                     show_default=False),
    ] = None,
    pkcs11_module: Pkcs11ModuleOption = None,
    root_key_label: Annotated[
        str | None,
        typer.Option("--root-key-label", help="Use this existing key pair in the token for the root CA instead of "
                     "generating one.", show_default=False),
    ] = None,
    issuing_key_label: Annotated[
        str | None,
        typer.Option("--issuing-key-label", help="Use this existing key pair in the token for the issuing CA "
                     "instead of generating one.", show_default=False),
    ] = None,
    pin_file: PinFileOption = None,
    store: StoreOption = None,
    passphrase_file: PassphraseFileOption = None,
    json_output: JsonOption = False,
) -> None:
    """Create a self-signed root CA and an issuing CA (pathlen 0) in the store.

    The CA keys are encrypted with your passphrase (from --passphrase-file, $PRIVCA_PASSPHRASE or a prompt).
    Keep the passphrase safe: without it the CA cannot sign anything.

    With --token-label the keys are generated inside an HSM token instead (never extractable; see docs/hsm.md),
    and the token's user PIN comes from --pin-file, $PRIVCA_PKCS11_PIN or a prompt. A wrong PIN is not retried.

    Examples:

        privca init --root-cn "Example UC Root CA" --issuing-cn "Example UC Issuing CA 1" --org "Example Ltd"

        privca init --root-cn "Example UC Root CA" --issuing-cn "Example UC Issuing CA 1" \\
            --pkcs11-module /usr/lib/softhsm/libsofthsm2.so --token-label uc-ca
    """
    from privca.errors import UsageError

    target = open_store(store)
    if exist_ok and target.is_initialised():
        from privca.ledger.cas import exists

        if exists(target.ledger):
            note(f"{target.path}: already holds a CA; nothing to do")
            return
    from privca.authority.ca import init_ca
    from privca.ledger.records import iso
    from privca.keys.keystore import CASecrets, TokenChoice

    token = None
    if token_label is not None:
        from privca.keys.hsm import module_path

        if passphrase_file is not None:
            raise UsageError("--passphrase-file: not used with --token-label; the token's PIN protects the keys "
                             "(--pin-file)")

        token = TokenChoice(module_path(pkcs11_module), token_label)
        secrets = CASecrets(pin=lambda: pin_source(pin_file))
    elif pkcs11_module or root_key_label or issuing_key_label:
        raise UsageError("--pkcs11-module, --root-key-label and --issuing-key-label: need --token-label")
    else:
        secrets = CASecrets(passphrase=lambda: passphrase_source(passphrase_file, confirm=True))
    moment = now()
    created = init_ca(target, secrets, root_cn=root_cn, issuing_cn=issuing_cn, org=org, key_type=key_type,
                      root_days=root_days, issuing_days=issuing_days, crl_url=crl_url, ocsp_url=ocsp_url, token=token,
                      root_key_label=root_key_label, issuing_key_label=issuing_key_label, now=moment)
    signed = sign_first_crls(target, secrets, moment)
    if json_output:
        names = {ca.id: ca.name for ca in created}
        print_json([ca.to_json(names) for ca in created])
        return
    for ca in created:
        print(f"{ca.role:8} {ca.subject}  (key {ca.key_type}, expires {iso(ca.not_after)})")
        print(f"         SHA-256 {fingerprint_text(ca.fingerprint_sha256)}")
    where = f"in token {token_label!r}" if token else "encrypted, owner-only"
    print(f"Store: {Path(target.path).absolute()} (keys {where})")
    if crl_url:
        print(f"First CRLs signed for {', '.join(signed)}; put them where the CRL URLs point: privca publish DIR")
    else:
        # Without a URL there is nowhere to publish to, and `privca publish` would refuse: say what comes first.
        print("No CRL URL: certificates will name no CRL, and there is no CRL to publish. To have one (Expressway "
              "can fetch it), before issuing run: privca ca set-url --crl-url http://pki.example.com/crl, "
              "then: privca publish DIR")
    print("Next: privca export all --out bundles, then privca issue expc.csr   (see privca issue --help)")

"""privca init: create the root and issuing CAs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from privca.cli.common import (JsonOption, PassphraseFileOption, PinFileOption, Pkcs11ModuleOption, StoreOption, fingerprint_text,
                     note, now, passphrase_source, pin_source, print_json, remember_seal, sign_first_crls)


# Over 60 lines: typer reads each option from this signature and the help, examples included, from the docstring.
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
    second_root: Annotated[bool, typer.Option("--second-root", help="Create this CA even though another one is "
                                              "recorded for you: a second, unrelated root that no peer trusts yet.")]
    = False,
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
    import os

    from privca.errors import UsageError
    from privca.ledger.cas import exists
    from privca.ledger.store import DEFAULT_STORE, STORE_ENV, Store, holds_ca, record_store, recorded_store

    # init creates where it is told (or ./store), never in the store recorded for the user: that one has a CA.
    target = Store(store if store is not None else (os.environ.get(STORE_ENV) or DEFAULT_STORE),
                   on_sealed=remember_seal)
    if exist_ok and target.is_initialised() and exists(target.ledger):
        note(f"{target.path}: already holds a CA; nothing to do")
        return
    recorded = recorded_store()
    has_recorded = recorded is not None and holds_ca(recorded)
    if has_recorded and recorded is not None and not target.is_initialised() \
            and recorded.absolute() != target.path.absolute():
        _confirm_second_root(recorded, target.path, second_root)
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
        print_json([ca.to_json(names) for ca in created], "cas")
        return
    for ca in created:
        print(f"{ca.role:8} {ca.subject}  (key {ca.key_type}, expires {iso(ca.not_after)})")
        print(f"         SHA-256 {fingerprint_text(ca.fingerprint_sha256)}")
    where = f"in token {token_label!r}" if token else "encrypted, owner-only"
    print(f"Store: {Path(target.path).absolute()} (keys {where})")
    if not has_recorded:
        config = record_store(target.path)
        if config is not None:
            print(f"Recorded in {config}: privca commands run from any folder use this store")
    if crl_url:
        print(f"First CRLs signed for {', '.join(signed)}; put them where the CRL URLs point: privca publish DIR")
    else:
        # Without a URL there is nowhere to publish to, and `privca publish` would refuse: say what comes first.
        print("No CRL URL: certificates will name no CRL, and there is no CRL to publish. To have one (Expressway "
              "can fetch it), before issuing run: privca ca set-url --crl-url http://pki.example.com/crl, "
              "then: privca publish DIR")
    print("Next: privca export all --out bundles, then privca issue expc.csr   (see privca issue --help)")


def _confirm_second_root(recorded: Path, target: Path, second_root: bool) -> None:
    """A second root is almost never meant: a device issued from it is trusted by no peer that trusts the first."""
    import sys

    from privca.errors import UsageError

    warning = (f"a CA is already recorded for you in {recorded.absolute()}; privca init would create a second, "
               f"unrelated root in {target.absolute()} that no peer trusts. To use your CA from here: privca "
               f"COMMAND --store {recorded.absolute()} (or just run the command: privca finds it)")
    if second_root:
        note(f"Warning: {warning}")
        return
    if sys.stdin.isatty():
        note(f"Warning: {warning}")
        if typer.confirm("Create a second root anyway?", default=False, err=True):
            return
        raise UsageError("nothing created")
    raise UsageError(f"{warning}; to create the second root anyway, add --second-root")

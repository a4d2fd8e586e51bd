"""The commands and their one-line summaries: what ``privca --help`` prints without importing typer."""

from __future__ import annotations

DESCRIPTION = "A private certificate authority for Cisco collaboration estates (Expressway, CUCM, Unity, CMS, CUBE)."

# name, summary. The summary is the first line of the command's docstring (tests/test_cli_startup.py keeps the
# two equal); --help lists them in this order. privca/cli/app.py says where each command is defined.
COMMANDS: list[tuple[str, str]] = [
    ("init", "Create a self-signed root CA and an issuing CA (pathlen 0) in the store."),
    ("issue",
     "Issue a certificate for each CSR: <name>.pem, <name>.chain.pem (CAs) and <name>.fullchain.pem."),
    ("list", "List issued certificates, soonest expiry first."),
    ("show", "Show one certificate from the ledger."),
    ("profiles", "List, show, check and add issuance profiles."),
    ("export",
     "Write the CA certificates a peer must trust, in the form it takes, with INSTRUCTIONS.md for its administrator."),
    ("revoke", "Revoke a certificate, or put it on hold (--reason certificateHold)."),
    ("unhold",
     "Release a certificate from hold (certificateHold): it is valid again and leaves the next CRL."),
    ("crl",
     "Sign a new CRL for every CA: the issuing CA's lists revoked certificates, the root's revoked intermediates."),
    ("status",
     "Show how fresh each CA's CRL is; exit 0 if all are fresh, 1 if one is due, 2 if one is stale or missing."),
    ("publish",
     "Write each CA's latest CRL and pre-signed OCSP responses under the paths of their URLs, for a web server."),
    ("serve",
     "Serve each CA's CRL at the path of its CRL URL, and answer OCSP at the path of its OCSP URL."),
    ("enroll", "Automatic enrollment (SCEP, EST): the RA, one-time challenge passwords, the approval queue."),
    ("ca", "The CAs themselves: list and show every generation, and set their CRL and OCSP URLs."),
    ("renew",
     "Renew a certificate: same names and profile, new serial, linked to the old one in the ledger."),
    ("rotate",
     "Rotate a CA generation: a new issuing CA, or a root rollover with cross-certificates."),
    ("plan",
     "Show what expires when, what to renew or rotate by when, and which trust bundles go to which peers."),
    ("audit",
     "Audit certificates: chain and root (public or private), EKUs, key, expiry, and a verdict with its remedy."),
    ("check",
     "Predict whether a product will accept a certificate and whether mTLS will work in its roles."),
    ("verify",
     "Check that the store is whole: exit 0 when it is, 13 with every problem listed when it is not."),
    ("backup",
     "Write an encrypted backup of the store: ledger, CA keys, profiles. Safe while others issue."),
    ("restore",
     "Restore a backup into a new store folder (missing or empty), check it, and only then put it in place."),
    ("notify",
     "Send what needs attention to Webex, Teams, Slack, a webhook or email; nothing is sent twice within its interval."),
]

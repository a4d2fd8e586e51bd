"""The CAs: create, load and sign; issuance into the ledger; intermediate and root rotation."""

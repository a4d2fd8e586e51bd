"""The source of truth: the SQLite ledger, the store layout, and the journal that makes writes crash-safe.

The only package that talks to SQLite. Other modules call the typed functions of ``cas`` (CA generations and
which of them peers must trust), ``certificates`` (issued certificates, listing, revocation status), ``crosses``
(cross-certificates), ``crls`` (each CA's latest CRL), ``enrollment`` (one-time challenge passwords and the
requests devices sent over SCEP or EST) and ``events`` (the hash-chained log), and get back the
frozen records of ``records``; ``db`` holds the connection, its transactions and the schema migrations. ``rows``,
``chain`` and ``proof`` bind every state row to the events log (each write records the digest of the rows it
changed), which ``privca verify`` replays.
"""

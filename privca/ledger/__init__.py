"""The source of truth: the SQLite ledger, the store layout, and the journal that makes writes crash-safe."""

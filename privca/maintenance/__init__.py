"""Keeping a store whole: verify, backup and restore."""

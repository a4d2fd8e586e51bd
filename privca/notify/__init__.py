"""privca notify: tell people what needs doing (expiring certificates, stale CRLs, CAs near their end, old backups)."""

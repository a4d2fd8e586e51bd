"""Building blocks every layer uses: names (SAN/DN), DER encoding, atomic file writes, findings."""

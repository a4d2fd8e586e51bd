"""Status of what was issued: revoke, CRLs, OCSP answers, publishing."""

"""The HTTP service: CRLs and OCSP for peers."""

"""CA key material: encrypted key files, the key store, and PKCS#11 tokens."""

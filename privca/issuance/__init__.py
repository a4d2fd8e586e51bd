"""What may be issued and how it is built: profiles, the CSR policy, the certificate builder."""

"""Certificates privca did not necessarily issue: reading files and hosts, audit, pre-upload checks."""

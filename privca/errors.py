"""One error hierarchy for privca.

Every failure a user can cause (bad input, wrong passphrase, a file in the way) is a PrivcaError. The CLI
catches PrivcaError in one place, prints ``Error: <message>`` on one line and exits with ``exit_code``.
Anything else is a bug and is allowed to show a traceback.

Messages name the culprit first: ``thing: what is wrong; how to fix``. They never contain secrets.
"""

from __future__ import annotations


class PrivcaError(Exception):
    """Base class for every expected failure."""

    exit_code = 1

    def __init__(self, message: str, *, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.message = message
        #: Further problems found in the same check (collect-all validation); shown after the message.
        self.problems = list(problems or [])

    def one_line(self) -> str:
        """The message, with any collected problems joined so the whole error is a single line."""
        text = self.message
        if self.problems:
            text += ": " + "; ".join(self.problems)
        return " ".join(text.split())  # control characters and newlines never reach the terminal


class UsageError(PrivcaError):
    """An option or argument that does not make sense."""

    exit_code = 2


class StoreError(PrivcaError):
    """The store is missing, already initialised, or not usable."""

    exit_code = 3


class KeyMaterialError(PrivcaError):
    """A key cannot be created, read or decrypted (wrong passphrase, bad permissions)."""

    exit_code = 4


class ProfileError(PrivcaError):
    """A profile file is invalid or unknown."""

    exit_code = 5


class CSRError(PrivcaError):
    """A CSR cannot be read or its signature does not verify."""

    exit_code = 6


class PolicyViolation(PrivcaError):
    """A CSR is well formed but the profile does not allow what it asks for."""

    exit_code = 7


class LedgerError(PrivcaError):
    """The ledger cannot be read or written, or a record is not there."""

    exit_code = 8


class OutputError(PrivcaError):
    """An output file or folder is in the way or cannot be written."""

    exit_code = 9


class ExportError(PrivcaError):
    """A trust bundle cannot be produced."""

    exit_code = 10


class RevocationError(PrivcaError):
    """A revocation request cannot be carried out."""

    exit_code = 11


class CertificateInputError(PrivcaError):
    """A certificate, chain or key given to audit/check cannot be read."""

    exit_code = 12


class IntegrityError(PrivcaError):
    """``privca verify`` found the store damaged, tampered with, or left half-written."""

    exit_code = 13


class BackupError(PrivcaError):
    """A backup archive cannot be written, read or restored."""

    exit_code = 14


class ClockError(PrivcaError):
    """This machine's clock cannot be right: before the CA's own start, or well before the ledger's newest event."""

    exit_code = 15


class EnrollmentError(PrivcaError):
    """An enrollment request (SCEP, EST) or an enrollment command cannot be carried out."""

    exit_code = 16

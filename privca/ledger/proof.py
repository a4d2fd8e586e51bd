"""The read side of the ledger's proof: every state row as it is now, for ``privca verify`` to compare with the
digests the events recorded (``privca.ledger.rows``), and the seals, checked with the CA certificates alone."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import dataclass

from privca.ledger import chain, rows
from privca.ledger.db import Ledger


def tracked_rows(ledger: Ledger) -> Iterator[tuple[str, list[str], tuple[object, ...]]]:
    """``(row key, column names, values)`` of every row of every tracked table, read as they are walked."""
    for table, pk in rows.TRACKED.items():
        cursor = ledger._conn.cursor()
        cursor.row_factory = None
        cursor.execute(f"SELECT * FROM {table} ORDER BY {pk}")
        names = [column[0] for column in cursor.description]
        index = names.index(pk)
        for values in cursor:
            yield rows.key(table, values[index]), names, tuple(values)


_KINDS = {"cas": "CA", "certificates": "certificate", "crls": "the CRL of CA", "cross_certificates": "cross-certificate",
          "enroll_challenges": "enrollment challenge", "enroll_requests": "enrollment request"}


def describe(ledger: Ledger, row_key: str, serial: str | None = None) -> str:
    """How messages name a row (``certificate 3F:2A:...``, ``CA issuing-1``, ``the CRL of CA root-1``): from the
    row itself, else ``serial`` (what an event said of a row that is gone), else its id. Only for findings."""
    from privca.common.serials import serial_text

    table, row_id = rows.split_key(row_key)
    kind = _KINDS.get(table, table)
    if table in ("cas", "crls"):
        found = ledger._conn.execute("SELECT name FROM cas WHERE id = ?", (row_id,)).fetchone()
        if found is not None:
            return f"{kind} {found[0]}"
    if table == "certificates":
        found = ledger._conn.execute("SELECT serial FROM certificates WHERE id = ?", (row_id,)).fetchone()
        if found is not None or serial:
            return f"{kind} {serial_text(str(found[0] if found is not None else serial))}"
    return f"{kind} #{row_id}"


# --- seals ------------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Seal:
    """A signed head of the events log: CA ``ca_id`` vouched that event #``count`` has hash ``head``."""

    id: int
    count: int
    head: str
    at: str
    ca_id: int
    ca_fingerprint: str
    algorithm: str
    signature: bytes

    @property
    def payload(self) -> bytes:
        return chain.seal_payload(self.count, self.head, self.at, self.ca_id, self.ca_fingerprint)

    def verifies_with(self, public_key: object) -> bool:
        """Whether the signature is the CA key's over this head (checked with its public key alone)."""
        from privca.common.signatures import sha256_signature_valid

        return sha256_signature_valid(public_key, self.algorithm, self.signature, self.payload)


_SEAL_COLUMNS = "id, count, head, at, ca_id, ca_fingerprint, algorithm, signature"


def _seal(row: tuple[object, ...]) -> Seal:
    sid, count, head, at, ca_id, fingerprint, algorithm, signature = row
    return Seal(int(str(sid)), int(str(count)), str(head), str(at), int(str(ca_id)), str(fingerprint), str(algorithm),
                bytes(signature) if isinstance(signature, (bytes, bytearray, memoryview)) else b"")


def all_seals(ledger: Ledger) -> list[Seal]:
    cursor = ledger._conn.cursor()
    cursor.row_factory = None
    return [_seal(row) for row in cursor.execute(f"SELECT {_SEAL_COLUMNS} FROM seals ORDER BY id")]


def head_problem(ledger: Ledger, known_good: str | None = None) -> tuple[str | None, str | None]:
    """The cheap check every command that reads the store makes: the newest seal's signature verifies with its CA's
    certificate and the event at its count still has the hash it sealed.

    Returns why not, in one line (None when it holds), and a token naming the seal and CA certificate that were
    checked. Given that token back (``known_good``, kept by the caller outside the store), the signature is not
    checked again: two indexed queries and a hash, and no import of ``cryptography``. It does not see a row edited
    behind privca's back (``privca verify`` does), but it sees the events log cut short or rewritten, and seals
    forged or deleted.
    """
    cursor = ledger._conn.cursor()
    cursor.row_factory = None
    row = cursor.execute(f"SELECT {_SEAL_COLUMNS} FROM seals ORDER BY id DESC LIMIT 1").fetchone()
    if row is None:
        if ledger._conn.execute("SELECT 1 FROM cas LIMIT 1").fetchone() is None:
            return None, None  # no CA yet: nothing to vouch for
        return ("the ledger carries no seal yet (it was made by an older privca, or its seals were deleted): its "
                "history is not signed until a command that unlocks a CA key runs (privca crl); see privca verify",
                None)
    seal = _seal(row)
    event_hash, pem, fingerprint = cursor.execute(
        "SELECT (SELECT hash FROM events WHERE id = ?), (SELECT pem FROM cas WHERE id = ?), "
        "(SELECT fingerprint_sha256 FROM cas WHERE id = ?)", (seal.count, seal.ca_id, seal.ca_id)).fetchone()
    where = f"seal #{seal.id} of {seal.at}"
    if event_hash is None:
        return (f"the events log was cut short: {where} vouches for {seal.count} events and event #{seal.count} is "
                "gone; run privca verify", None)
    if event_hash != seal.head:
        return (f"the events log was rewritten: event #{seal.count} is not the one {where} signed; run privca "
                "verify", None)
    token = seal_token(seal.payload, seal.algorithm, seal.signature, str(pem))
    if token == known_good:
        return None, token
    if pem is None or fingerprint != seal.ca_fingerprint or not seal.verifies_with(_public_key(str(pem))):
        return f"{where} does not verify with its CA's certificate (forged, or the CA replaced); run privca verify", None
    return None, token


def seal_token(payload: bytes, algorithm: str, signature: bytes, ca_pem: str) -> str:
    """What names a checked seal and the CA certificate it was checked with (see ``head_problem``)."""
    return hashlib.sha256(b"\0".join((payload, algorithm.encode(), signature, ca_pem.encode()))).hexdigest()


def made_token(ledger: Ledger, made: chain.SealMade) -> str | None:
    """The token of a seal this process made (genuine: it holds the key), for the cache ``head_problem`` reads."""
    row = ledger._conn.execute("SELECT pem FROM cas WHERE id = ?", (made.ca_id,)).fetchone()
    return None if row is None else seal_token(made.payload, made.algorithm, made.signature, str(row[0]))


def _public_key(pem: str) -> object:
    from cryptography import x509

    try:
        return x509.load_pem_x509_certificate(pem.encode()).public_key()
    except Exception:  # an unreadable certificate verifies nothing (privca verify names it)
        return None

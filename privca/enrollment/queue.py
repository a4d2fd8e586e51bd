"""The approval queue: an operator approves or rejects the requests that came without a challenge password."""

from __future__ import annotations

from datetime import datetime

from privca.enrollment.challenges import check_names
from privca.errors import EnrollmentError, PolicyViolation
from privca.ledger import events
from privca.ledger.enrollment import (EnrollRequest, decide_request, request_by_id, set_request_names)
from privca.ledger.store import Store


def decide(store: Store, request_id: int, *, approve: bool, names: list[str], now: datetime) -> EnrollRequest:
    """Approve (after checking the request against its profile) or reject a pending request, with an event."""
    from privca.enrollment.enroller import general_name
    from privca.enrollment.csr import read_csr
    from privca.issuance.policy import check
    from privca.issuance.profiles import load_profile

    ledger = store.require_ca()
    found = request_by_id(ledger, request_id)
    if found is None:
        raise EnrollmentError(f"request #{request_id}: no such enrollment request; see: privca enroll pending")
    if found.status != "pending":
        raise EnrollmentError(f"request #{request_id}: already {found.status}")
    granted = check_names(names)
    if approve:
        if granted and found.sans:
            raise EnrollmentError(f"request #{request_id}: the CSR already names {', '.join(found.sans)}; --names is "
                                  "only for CSRs without SANs")
        device_csr = read_csr(found.csr_der, f"request #{request_id}")
        profile = load_profile(found.profile, store.profiles_dir)
        supplied = [general_name(name) for name in granted] or None
        checked, problems = check(device_csr.csr, found.csr_der, f"request #{request_id}", profile,
                                  supplied_names=supplied, signature_checked=device_csr.signature_ok)
        if checked is None:
            raise PolicyViolation(f"request #{request_id}: profile {profile.name} would refuse it; not approved",
                                  problems=problems)
    status = "approved" if approve else "rejected"
    with ledger.write():
        if not decide_request(ledger, request_id, status, now, from_status="pending"):
            raise EnrollmentError(f"request #{request_id}: decided by someone else a moment ago")
        if approve and granted:
            set_request_names(ledger, request_id, granted)
        details: dict[str, object] = {"request": request_id, "channel": found.channel, "transaction": found.transaction_id,
                   "profile": found.profile, "subject": found.subject}
        if granted:
            details["names"] = granted
        events.record(ledger, now, f"enroll-{'approve' if approve else 'reject'}", details)
    decided = request_by_id(ledger, request_id)
    assert decided is not None
    return decided

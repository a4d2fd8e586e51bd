"""Automatic enrollment: SCEP (RFC 8894) and EST (RFC 7030) for devices such as IOS-XE routers (CUBE).

Protocol logic only: functions of request bytes to response bytes, which the HTTP service mounts. Decisions go
through ``enroller`` (challenge passwords, the approval queue, renewals), certificates through the same profiles,
policy, signer and ledger as ``privca issue``.
"""

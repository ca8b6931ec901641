"""Idempotency keys at the HTTP edge: a POST may carry an ``Idempotency-Key`` header; the
brain keeps the key with the principal and a fingerprint of the request, so a retry gets the
first answer back and a different request under a used key is refused (409).
"""

from __future__ import annotations

import hashlib

from actors.brain_api import IdemKey

#: Longest ``Idempotency-Key`` accepted (characters).
MAX_KEY_CHARS = 200


def request_hash(method: str, path: str, body: bytes) -> str:
    """Fingerprint of a request, to tell a retry from a different request with the same key."""
    return hashlib.sha256(method.encode() + b" " + path.encode() + b"\n" + body).hexdigest()


def key_ok(key: str) -> bool:
    """Whether an ``Idempotency-Key`` header value has an acceptable length (1-200 characters)."""
    return 1 <= len(key) <= MAX_KEY_CHARS


def idem_key(key: str, principal_id: str, method: str, path: str, body: bytes) -> IdemKey:
    """What the brain keeps for a request's key: the key, whose it is, and the request's fingerprint."""
    return key, principal_id, request_hash(method, path, body)


__all__ = ["MAX_KEY_CHARS", "idem_key", "key_ok", "request_hash"]

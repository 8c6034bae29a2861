"""Request guards for the webhook receiver (SRS signs nothing).

* a shared secret, as the last path segment or an ``X-SIPS-Webhook-Secret``
  header, compared in constant time;
* HMAC-SHA256 signatures in the Standard Webhooks scheme, several secrets
  accepted for rotation, with a timestamp tolerance checked both ways;
* an IP allow-list that believes ``X-Forwarded-For`` only from trusted
  proxies.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Final

__all__ = [
    "SECRET_HEADER",
    "client_ip",
    "ip_allowed",
    "secret_matches",
    "sign_headers",
    "verify_signature",
]

SECRET_HEADER: Final = "X-SIPS-Webhook-Secret"

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


def secret_matches(provided: str | None, secret: str) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    if provided is None:
        return False
    # Header values may carry undecodable bytes (as surrogates): never a 500.
    return hmac.compare_digest(_bytes(provided), _bytes(secret))


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def _key(secret: str) -> bytes:
    # Standard Webhooks secrets are "whsec_" + base64; others are used as is.
    if secret.startswith("whsec_"):
        try:
            return base64.b64decode(secret[6:], validate=True)
        except ValueError:
            pass
    return secret.encode()


def _signature(key: bytes, msg_id: str, timestamp: str, body: bytes) -> str:
    signed = _bytes(f"{msg_id}.{timestamp}.") + body
    return base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


def sign_headers(
    secret: str,
    body: bytes,
    *,
    msg_id: str | None = None,
    timestamp: int | None = None,
) -> dict[str, str]:
    """Headers that sign ``body`` in the Standard Webhooks scheme.

    Public so tests, relays and the sandbox can post signed updates::

        headers = sign_headers("whsec_...", body)
        await session.post(url, data=body, headers=headers)
    """
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sig = _signature(_key(secret), msg_id, stamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{sig}",
        "Content-Type": "application/json",
    }


def verify_signature(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float,
    now: float,
) -> str | None:
    """Check a Standard Webhooks signature; return why it failed, or ``None``."""
    msg_id = headers.get("webhook-id")
    stamp = headers.get("webhook-timestamp")
    signatures = headers.get("webhook-signature")
    if not msg_id or not stamp or not signatures:
        return "missing signature headers"
    # Unix seconds in ASCII digits only: int() would also take "+1", "1_0" and
    # non-ASCII digits, and a huge value overflows the float comparison below.
    if not (stamp.isascii() and stamp.isdigit()) or len(stamp) > 12:
        return "bad signature timestamp"
    sent_at = int(stamp)
    if abs(now - sent_at) > tolerance:
        return "signature timestamp outside tolerance"
    presented = [
        part.split(",", 1)[1]
        for part in signatures.split()
        if part.startswith("v1,") and "," in part
    ]
    for secret in secrets:
        expected = _signature(_key(secret), msg_id, stamp, body)
        for candidate in presented:
            if hmac.compare_digest(_bytes(candidate), expected.encode()):
                return None
    return "no valid signature"


def parse_networks(values: Iterable[str]) -> tuple[_Network, ...]:
    """Parse CIDR strings (validated already by the config)."""
    return tuple(ipaddress.ip_network(v, strict=False) for v in values)


def _in(address: str | None, networks: Sequence[_Network]) -> bool:
    if not address:
        return False
    try:
        ip = ipaddress.ip_address(address.strip())
    except ValueError:
        return False
    return any(ip in net for net in networks)


def client_ip(
    peer: str | None, forwarded_for: str | None, trusted: Sequence[_Network]
) -> str | None:
    """The real client address: walk ``X-Forwarded-For`` back past trusted proxies."""
    address = peer
    if forwarded_for and _in(peer, trusted):
        hops = [h.strip() for h in forwarded_for.split(",") if h.strip()]
        while hops:
            address = hops.pop()
            if not _in(address, trusted):
                break
    return address


def ip_allowed(address: str | None, allowed: Sequence[_Network]) -> bool:
    """Whether ``address`` lies in one of the allowed networks."""
    return _in(address, allowed)

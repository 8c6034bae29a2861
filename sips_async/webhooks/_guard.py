"""Guard stage of the webhook path (SRS signs nothing): who may post.

* a shared secret, as the last path segment or an ``X-SIPS-Webhook-Secret``
  header, compared in constant time;
* HMAC-SHA256 signatures in the Standard Webhooks scheme (``webhook-*`` or
  ``svix-*`` headers), several secrets accepted for rotation, with a
  timestamp tolerance checked both ways; secrets are decoded exactly as the
  ``standardwebhooks`` and ``svix`` libraries decode them;
* an IP allow-list that believes ``X-Forwarded-For`` only from trusted
  proxies (every header line, in order).

:class:`Guard` is built once from a :class:`~sips_async.WebhookConfig`; its
``check_*`` methods return a :class:`Refusal` (status and reason) or ``None``.
The data path reads guard -> decode -> tracker.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import ipaddress
import re
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Final, NamedTuple

from multidict import CIMultiDict, CIMultiDictProxy

from ..errors import SipsConfigError, WebhookVerificationError

if TYPE_CHECKING:
    from .._config import WebhookConfig

__all__ = [
    "SECRET_HEADER",
    "Guard",
    "Refusal",
    "client_ip",
    "header_lines",
    "ip_allowed",
    "secret_matches",
    "sign_headers",
    "signing_key",
    "verify",
    "verify_signature",
]

SECRET_HEADER: Final = "X-SIPS-Webhook-Secret"
_PREFIX: Final = "whsec_"
_BASE64: Final = re.compile(r"[A-Za-z0-9+/]+")

_Network = ipaddress.IPv4Network | ipaddress.IPv6Network


class Refusal(NamedTuple):
    """Why a request is refused: the HTTP status to answer and a short reason."""

    status: int
    reason: str


def secret_matches(provided: str | None, secret: str) -> bool:
    """Constant-time comparison of a presented secret with the configured one."""
    return _matches(provided, _bytes(secret))


def _matches(provided: str | None, expected: bytes) -> bool:
    if provided is None:
        return False
    # Header values may carry undecodable bytes (as surrogates): never a 500.
    return hmac.compare_digest(_bytes(provided), expected)


def _bytes(text: str) -> bytes:
    return text.encode("utf-8", "surrogateescape")


def signing_key(secret: str) -> bytes:
    """The HMAC key of a Standard Webhooks secret, decoded as svix decodes it.

    ``whsec_`` prefix optional, ``=`` padding optional, standard base64
    alphabet. The result equals ``standardwebhooks.Webhook(secret)``'s key for
    every secret accepted here; anything else (a character outside the
    alphabet, which those libraries silently drop, or an impossible length)
    raises :class:`~sips_async.SipsConfigError` instead of signing with a key
    the other side would not derive.
    """
    text = secret.removeprefix(_PREFIX)
    data = text.rstrip("=")
    if not _BASE64.fullmatch(data) or len(data) % 4 == 1:
        raise SipsConfigError(
            "a signing secret must be base64 (standard alphabet, optionally "
            "prefixed 'whsec_', padding optional), as svix and Standard Webhooks "
            "print them"
        )
    return base64.b64decode(data + "=" * (-len(data) % 4))


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

    Raises:
        SipsConfigError: ``secret`` is not a Standard Webhooks secret.
    """
    msg_id = msg_id or f"msg_{uuid.uuid4().hex}"
    stamp = str(int(time.time()) if timestamp is None else timestamp)
    sig = _signature(signing_key(secret), msg_id, stamp, body)
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": stamp,
        "webhook-signature": f"v1,{sig}",
        "Content-Type": "application/json",
    }


def header_lines(headers: Mapping[str, str], name: str) -> list[str]:
    """Every value of header ``name``, in order, from any headers mapping.

    Works with aiohttp's and multidict's ``getall``, Starlette's ``getlist``
    and plain dicts (matched case-insensitively).
    """
    getall = getattr(headers, "getall", None)
    if getall is not None:
        return list(getall(name, []))
    getlist = getattr(headers, "getlist", None)
    if getlist is not None:
        return list(getlist(name))
    lowered = name.lower()
    return [value for key, value in headers.items() if key.lower() == lowered]


def _header(headers: Mapping[str, str], *names: str) -> str | None:
    for name in names:
        values = header_lines(headers, name)
        if values:
            return values[0]
    return None


def _check_signature(
    keys: Sequence[bytes],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float,
    now: float,
) -> str | None:
    # svix's verifier reads the svix-* spelling first: so do we.
    msg_id = _header(headers, "svix-id", "webhook-id")
    stamp = _header(headers, "svix-timestamp", "webhook-timestamp")
    signatures = _header(headers, "svix-signature", "webhook-signature")
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
    for key in keys:
        expected = _signature(key, msg_id, stamp, body)
        for candidate in presented:
            if hmac.compare_digest(_bytes(candidate), expected.encode()):
                return None
    return "no valid signature"


def verify_signature(
    secrets: Sequence[str],
    headers: Mapping[str, str],
    body: bytes,
    *,
    tolerance: float,
    now: float,
) -> str | None:
    """Check a Standard Webhooks signature; return why it failed, or ``None``."""
    keys = [signing_key(secret) for secret in secrets]
    return _check_signature(keys, headers, body, tolerance=tolerance, now=now)


def verify(
    body: bytes,
    headers: Mapping[str, str],
    *,
    secrets: str | Sequence[str],
    tolerance: float = 300.0,
    now: float | None = None,
) -> None:
    """Verify a Standard Webhooks (or svix) signature, in any web framework.

    ``headers`` is any mapping (aiohttp, Starlette, a plain dict); both the
    ``webhook-*`` and the ``svix-*`` spellings are read. ``secrets`` is one
    secret or several (rotation: any may match). Like svix's
    ``Webhook.verify``::

        try:
            verify(body, request.headers, secrets=os.environ["SIGNING_SECRET"])
        except WebhookVerificationError as exc:
            return Response(status_code=401, content=exc.reason)

    Raises:
        WebhookVerificationError: missing headers, a timestamp outside
            ``tolerance`` seconds of ``now``, or no matching signature.
        SipsConfigError: a secret is not a Standard Webhooks secret.
    """
    secret_list = [secrets] if isinstance(secrets, str) else list(secrets)
    if not secret_list:
        raise SipsConfigError("verify() needs at least one signing secret")
    reason = verify_signature(
        secret_list,
        headers,
        body,
        tolerance=tolerance,
        now=time.time() if now is None else now,
    )
    if reason is not None:
        raise WebhookVerificationError(reason)


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
    """The real client address: walk ``X-Forwarded-For`` back past trusted proxies.

    ``forwarded_for`` is every ``X-Forwarded-For`` line joined with ``", "``
    in order (RFC 7230 3.2.2): a proxy that appends a second line must not
    hide the hops of the first.
    """
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


_NOT_ALLOWED: Final = Refusal(403, "address not allowed")
TOO_LARGE: Final = Refusal(413, "body too large")
NOT_JSON: Final = Refusal(415, "body must be application/json")
_BAD_SECRET: Final = Refusal(401, "missing or wrong secret")
_NOT_FOUND: Final = Refusal(404, "not found")


_MULTIDICTS: Final = (CIMultiDictProxy, CIMultiDict)


def _not_json(headers: Mapping[str, str]) -> bool:
    # SRS's content type is not documented: none at all is let through (the
    # body must still decode as JSON), a non-JSON one is refused.
    if isinstance(headers, _MULTIDICTS):
        # aiohttp's headers: case-insensitive already; get() is the first line.
        first = headers.get("Content-Type")
        if first is None or first == "application/json":  # SRS's, usually
            return False
    else:
        values = header_lines(headers, "Content-Type")
        if not values:
            return False
        first = values[0]
    ctype = first.split(";", 1)[0].strip().lower()
    return ctype != "application/json" and not ctype.endswith("+json")


class Guard:
    """The guard of one receiver, built once from its config."""

    __slots__ = (
        "_allowed",
        "_keys",
        "_max_body",
        "_secret",
        "_secret_bytes",
        "_tolerance",
        "_trusted",
        "needs_peer",
        "signed",
    )

    def __init__(self, config: WebhookConfig) -> None:
        self._allowed = parse_networks(config.allowed_ips)
        self._trusted = parse_networks(config.trusted_proxies)
        self._secret = config.secret
        self._secret_bytes = _bytes(config.secret) if config.secret else b""
        self._keys = tuple(signing_key(s) for s in config.signing_secrets)
        self._tolerance = config.tolerance
        self._max_body = config.max_body_size
        # Asked on every request: plain attributes, not properties.
        #: Whether :meth:`check_body` checks a signature (signing secrets set).
        self.signed = bool(self._keys)
        #: Whether :meth:`check_request` looks at the peer's address.
        self.needs_peer = bool(self._allowed)

    def __repr__(self) -> str:
        return (
            f"<Guard secret={self._secret is not None} "
            f"signing_keys={len(self._keys)} allowed={len(self._allowed)}>"
        )

    def check_request(
        self,
        headers: Mapping[str, str],
        *,
        peer: str | None,
        token: str | None,
        length: int | None,
    ) -> Refusal | None:
        """What is known before the body is read, in order: address, secret,
        size (``length``: the body's, or ``Content-Length``), content type."""
        if self._allowed:
            forwarded = ", ".join(header_lines(headers, "X-Forwarded-For"))
            address = client_ip(peer, forwarded or None, self._trusted)
            if not ip_allowed(address, self._allowed):
                return _NOT_ALLOWED
        if self._secret is not None:
            presented = token if token is not None else _header(headers, SECRET_HEADER)
            if not _matches(presented, self._secret_bytes):
                return _BAD_SECRET
        elif token is not None:
            return _NOT_FOUND
        if length is not None and length > self._max_body:
            return TOO_LARGE
        if _not_json(headers):
            return NOT_JSON
        return None

    def check_body(
        self, body: bytes, headers: Mapping[str, str], *, now: float
    ) -> Refusal | None:
        """The signature over the body, when signing secrets are configured."""
        if not self._keys:
            return None
        reason = _check_signature(
            self._keys, headers, body, tolerance=self._tolerance, now=now
        )
        return None if reason is None else Refusal(401, reason)

    def check(
        self,
        body: bytes,
        headers: Mapping[str, str],
        *,
        peer: str | None,
        token: str | None,
        now: float,
    ) -> Refusal | None:
        """Every check in order; the first refusal, or ``None`` to let it in."""
        return self.check_request(
            headers, peer=peer, token=token, length=len(body)
        ) or self.check_body(body, headers, now=now)

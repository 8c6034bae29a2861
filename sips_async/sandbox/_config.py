"""The sandbox's settings: accepted credentials, fault knobs and webhook target."""

from __future__ import annotations

import ipaddress
import math
from dataclasses import dataclass, field

from ..errors import SipsConfigError

__all__ = ["SandboxConfig", "check_loopback", "check_webhook_url"]

_RATES = ("error_rate", "drop_rate", "duplicate_rate", "reorder_rate", "lose_rate")


def check_loopback(host: str) -> str:
    """Return ``host`` if it names a loopback interface, else raise.

    The sandbox accepts well-known credentials, so it never listens beyond
    this machine.

    Raises:
        SipsConfigError: ``host`` is not ``localhost`` or a loopback address.
    """
    if host.strip().lower() == "localhost":
        return host
    try:
        loopback = ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        loopback = False
    if not loopback:
        raise SipsConfigError(
            f"the sandbox listens on loopback only (127.0.0.1, ::1, localhost), "
            f"not {host!r}"
        )
    return host


def check_webhook_url(url: str | None) -> str | None:
    """Return ``url`` if it is ``None`` or an ``http(s)://`` URL, else raise.

    Raises:
        SipsConfigError: the URL has another scheme.
    """
    if url is not None and not url.startswith(("http://", "https://")):
        raise SipsConfigError("webhook_url must start with http:// or https://")
    return url


@dataclass(frozen=True, slots=True, kw_only=True)
class SandboxConfig:
    """How the fake SIPS server behaves.

    Every rate is a probability in ``[0, 1]`` drawn per request (or per
    webhook step) from one random generator seeded with ``seed``, so a run
    with the same seed and the same request sequence injects the same faults.

    Attributes:
        client_id: the only client id the token endpoint accepts.
        client_secret: the secret that goes with it.
        token_lifetime: seconds a token stays valid; then every call with it
            is answered 401 in the seed's shape.
        latency: seconds added before every API answer.
        error_rate: fraction of API requests answered 503 before the body is
            read: nothing was recorded, so a retry is safe.
        drop_rate: fraction of API requests whose connection is closed without
            an answer, after the body was read and the order recorded.
        duplicate_rate: fraction of webhook deliveries sent twice with an
            identical body (a replay).
        reorder_rate: fraction of webhook steps delivered after the next one.
        lose_rate: fraction of webhook steps lost for good: never sent, never
            redelivered (the order's status still moves, so ``GET
            /orders/{id}`` and Order List show it); counted as
            ``stats().faults["lose"]``.
        step_delay: seconds between an order's webhook steps.
        webhook_url: where updates are POSTed (also settable on the running
            :class:`~sips_async.sandbox.Sandbox`); ``None`` sends nothing.
        webhook_secret: sent in the ``X-SIPS-Webhook-Secret`` header if set.
        signing_secret: if set, every delivery carries Standard Webhooks
            signature headers made with this secret.
        webhook_retries: redelivery attempts after a non-2xx answer or an
            unreachable receiver (exponential backoff from 0.05 s, capped).
        branches: branch codes orders may name; any other is a business-rule
            failure (``Orders_GeneralError``).
        silent_drops: drop, without a webhook, the queued orders SRS is
            reported to drop (placeholder job account 1, a product not active
            at the branch, a unit of measure the variant lacks, a missing
            option on a multi-variant product); counted in ``stats().dropped``.
        seed: random seed for reproducible faults (``None``: unpredictable).
    """

    client_id: str = "sandbox"
    client_secret: str = field(default="sandbox-secret", repr=False)
    token_lifetime: float = 3600.0
    latency: float = 0.0
    error_rate: float = 0.0
    drop_rate: float = 0.0
    duplicate_rate: float = 0.0
    reorder_rate: float = 0.0
    lose_rate: float = 0.0
    step_delay: float = 0.01
    webhook_url: str | None = field(default=None, repr=False)
    webhook_secret: str | None = field(default=None, repr=False)
    signing_secret: str | None = field(default=None, repr=False)
    webhook_retries: int = 5
    branches: tuple[str, ...] = ("BRRIV", "WSGRA", "DEMO")
    silent_drops: bool = True
    seed: int | None = None

    def __post_init__(self) -> None:
        if not self.client_id or not self.client_secret:
            raise SipsConfigError("client_id and client_secret must be non-empty")
        if not (math.isfinite(self.token_lifetime) and self.token_lifetime > 0):
            raise SipsConfigError("token_lifetime must be a positive number")
        for name in ("latency", "step_delay"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise SipsConfigError(f"{name} must be a number >= 0")
        for name in _RATES:
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise SipsConfigError(f"{name} must be between 0 and 1, got {value!r}")
        if not 0 <= self.webhook_retries <= 100:
            raise SipsConfigError("webhook_retries must be between 0 and 100")
        if isinstance(self.branches, str):  # type: ignore[unreachable]
            raise SipsConfigError("branches takes a sequence of branch codes")
        object.__setattr__(
            self, "branches", tuple(str(b).strip().upper() for b in self.branches)
        )
        check_webhook_url(self.webhook_url)
        for name in ("webhook_secret", "signing_secret"):
            if getattr(self, name) == "":
                raise SipsConfigError(f"{name} must be None or non-empty")
        if self.signing_secret is not None:
            from ..webhooks._guard import signing_key

            signing_key(self.signing_secret)  # base64, as the receiver decodes it

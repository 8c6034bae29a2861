"""What the sandbox saw and did, as plain msgspec structs (JSON-ready)."""

from __future__ import annotations

from typing import Final

import msgspec

__all__ = ["FAULT_KINDS", "SandboxStats", "WebhookRecord"]

#: The kinds of injected fault counted in :attr:`SandboxStats.faults`.
FAULT_KINDS: Final[tuple[str, ...]] = ("error", "drop", "duplicate", "reorder", "lose")


class WebhookRecord(msgspec.Struct, frozen=True, kw_only=True):
    """One delivery attempt of one webhook update.

    Attributes:
        transaction_id: the order's ``transactionID`` (``subscriberReferenceNum3``).
        event_id: the update's ``eventId`` (equal for a replay).
        event_type: ``OA``, ``OU``, ``DU``...
        status: the update's ``eventStatus`` text.
        answer_status: the receiver's HTTP status; ``None`` when it could not
            be reached or did not answer in time.
        attempt: 1 for the first try, 2 for the first redelivery, and so on.
        duplicate: whether this delivery is an injected replay.
    """

    transaction_id: str | None
    event_id: str
    event_type: str
    status: str | None
    answer_status: int | None
    attempt: int = 1
    duplicate: bool = False

    @property
    def ok(self) -> bool:
        """Whether the receiver answered 2xx."""
        return self.answer_status is not None and 200 <= self.answer_status < 300


class SandboxStats(msgspec.Struct, frozen=True, kw_only=True):
    """A snapshot of the sandbox's counters (``GET /_sandbox/stats`` as JSON).

    Attributes:
        transactions: how many times each ``transactionID`` was received in a
            submit whose body was read and whose order was recorded.
        webhooks: every delivery attempt, oldest first (the most recent
            50,000 are kept).
        orders: orders recorded (each ``transactionID`` once).
        tokens_issued: tokens handed out.
        requests: API requests received (the stats endpoint excluded).
        faults: injected faults per kind: ``error`` (503), ``drop`` (no
            answer), ``duplicate`` (replayed delivery), ``reorder`` (swapped
            steps), ``lose`` (a webhook step never sent).
        dropped: queued orders dropped without a webhook, as SRS is reported
            to drop them, by ``transactionID``, with the reasons.
    """

    transactions: dict[str, int] = {}
    webhooks: list[WebhookRecord] = []
    orders: int = 0
    tokens_issued: int = 0
    requests: int = 0
    faults: dict[str, int] = {}
    dropped: dict[str, list[str]] = {}

    def deliveries(self, transaction_id: str) -> list[WebhookRecord]:
        """The delivery attempts for one order, oldest first."""
        return [w for w in self.webhooks if w.transaction_id == transaction_id]

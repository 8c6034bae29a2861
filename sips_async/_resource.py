"""What every SIPS resource shares: requests, path parameters, lenient decoding.

A resource (``client.customers``, ``client.branches``...) sends its calls
through the same :class:`~sips_async._retry.Requester` as ``client.orders``,
so errors follow the same table (400 validation, 401 refresh once, 404 not
found, 5xx retried with backoff). None of these calls places an order, so
every one of them may be retried.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from typing import Any, Final, TypeVar

import msgspec

from ._codec import encode
from ._config import Endpoints
from ._retry import Requester
from .errors import SipsResponseError, SipsValidationError

__all__ = [
    "Resource",
    "date_param",
    "decode_json",
    "from_wire",
    "list_from_wire",
    "segment",
]

_SEGMENT: Final = re.compile(r"[A-Za-z0-9_.-]{1,64}")
_any_decoder: Final = msgspec.json.Decoder()


def date_param(value: dt.date | str | None, name: str) -> str | None:
    """``value`` as ``YYYY-MM-DD`` for SRS (``None`` stays ``None``).

    Raises:
        SipsValidationError: not a date, naming ``name``.
    """
    if value is None:
        return None
    if isinstance(value, dt.date):
        return value.isoformat()
    text = str(value).strip()
    try:
        dt.date.fromisoformat(text)
    except ValueError:
        raise SipsValidationError(
            f"{name} must be a date (YYYY-MM-DD), got {value!r}", field_path=name
        ) from None
    return text


T = TypeVar("T", bound=msgspec.Struct)


def segment(value: object, name: str) -> str:
    """A path parameter checked to be one safe segment (no '/', '?', '..').

    Raises:
        SipsValidationError: empty, too long or with other characters.
    """
    text = str(value).strip() if value is not None else ""
    if not _SEGMENT.fullmatch(text) or set(text) == {"."}:
        raise SipsValidationError(
            f"{name} must be 1-64 letters, digits, '.', '-' or '_', got {value!r}",
            field_path=name,
        )
    return text


def from_wire(item: Any, model: type[T], what: str) -> T:
    """Convert one decoded JSON object to ``model``; keep it as ``raw`` if asked.

    Numbers sent as strings (and the reverse where the model allows both)
    are accepted; a value of the wrong kind is a :class:`SipsResponseError`.
    """
    if not isinstance(item, dict):
        raise SipsResponseError(
            f"{what}: expected an object, got {type(item).__name__}"
        )
    try:
        value = msgspec.convert(item, model, strict=False)
    except msgspec.ValidationError as exc:
        raise SipsResponseError(f"unreadable {what}: {exc}") from None
    if "raw" in model.__struct_fields__:
        value = msgspec.structs.replace(value, raw=item)
    return value


def list_from_wire(
    doc: Any, model: type[T], what: str, *, keys: tuple[str, ...] = ()
) -> list[T]:
    """A list of ``model`` from a bare array or an object wrapping one.

    ``keys`` are the wrapper keys to try first (``invoiceList``...); failing
    those, the first array value of the object is taken, since SRS publishes
    few response envelopes.
    """
    items: Any = doc
    if isinstance(doc, dict):
        items = next((doc[k] for k in keys if isinstance(doc.get(k), list)), None)
        if items is None:
            items = next((v for v in doc.values() if isinstance(v, list)), None)
        if items is None:
            items = [doc] if doc else []
    if not isinstance(items, list):
        raise SipsResponseError(f"{what}: expected a list, got {type(doc).__name__}")
    return [from_wire(item, model, what) for item in items]


class Resource:
    """Base of the resources: holds the requester, the paths and the timeout."""

    __slots__ = ("_endpoints", "_requester", "_timeout")

    def __init__(
        self, *, requester: Requester, endpoints: Endpoints, timeout: float
    ) -> None:
        self._requester = requester
        self._endpoints = endpoints
        self._timeout = timeout

    async def _get(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> bytes:
        resp = await self._requester.request(
            "GET", path, params=params, timeout=timeout or self._timeout
        )
        return resp.body

    async def _get_json(
        self,
        path: str,
        *,
        params: Mapping[str, str] | None = None,
        timeout: float | None = None,
    ) -> Any:
        return decode_json(await self._get(path, params=params, timeout=timeout), path)

    async def _post_json(
        self, path: str, body: object, *, timeout: float | None = None
    ) -> Any:
        resp = await self._requester.request(
            "POST", path, json=encode(body), timeout=timeout or self._timeout
        )
        return decode_json(resp.body, path)


def decode_json(body: bytes, path: str) -> Any:
    """Decode a JSON answer; anything else is a :class:`SipsResponseError`."""
    try:
        return _any_decoder.decode(body)
    except msgspec.DecodeError:
        raise SipsResponseError(f"unreadable answer from {path}: not JSON") from None

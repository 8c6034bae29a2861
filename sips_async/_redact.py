"""The one redaction function for every text that can reach a message or a log.

SRS (or a proxy in front of it) may echo what it was sent: the
``Authorization`` header, the token request's form body, a JSON document
holding a token. :func:`redact` masks, with ``***``:

* each known secret (the access token in use, the client secret, a webhook
  secret) wherever it appears, as is or URL-encoded;
* whatever follows ``Bearer`` or ``Basic``, and the value of an echoed
  ``Authorization:`` header, even when the token is not one we know;
* ``access_token=`` / ``client_secret=`` style form or query echoes;
* JSON (or Python repr) members such as ``"access_token": "..."``.

Every exception built from an SRS body and every DEBUG line goes through it.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Final
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "redact", "redact_bytes"]

MASK: Final = "***"

#: Names whose value is a credential, in forms, queries and JSON.
_NAMES: Final = (
    r"access_token|refresh_token|id_token|client_secret|client_assertion"
    r"|password|secret"
)

_PATTERNS: Final[tuple[tuple[re.Pattern[str], str], ...]] = (
    # An echoed header: "Authorization: Bearer x", "authorization": "Basic y".
    (
        re.compile(
            r"""(?i)\b((?:proxy-)?authorization)(["']?\s*[:=]\s*["']?)"""
            r"""[^"'\r\n,;}]+"""
        ),
        rf"\1\2{MASK}",
    ),
    # A credential after its scheme (RFC 6750 b64token, RFC 7617 basic).
    (re.compile(r"(?i)\b(bearer|basic)(\s+)[A-Za-z0-9\-._~+/]+=*"), rf"\1\2{MASK}"),
    # JSON or repr members: "access_token": "...", 'client_secret': '...'.
    (
        re.compile(rf"""(?i)(["'])({_NAMES})\1(\s*:\s*)(["'])(?:\\.|(?!\4)[^\\])*\4"""),
        rf"\1\2\1\3\4{MASK}\4",
    ),
    # Form bodies and query strings: access_token=...&client_secret=...
    (re.compile(rf"(?i)\b({_NAMES})=[^&\s\"']+"), rf"\1={MASK}"),
)


def _forms(secret: str) -> set[str]:
    return {secret, quote_plus(secret), quote(secret, safe="")}


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """Return ``text`` with every credential in it replaced by ``***``.

    Args:
        text: anything bound for an exception message, an attribute or a log.
        secrets: values known to be secret (``None`` and ``""`` are skipped);
            each is masked as is, ``quote_plus``- and ``quote``-encoded.
    """
    forms: set[str] = set()
    for secret in secrets:
        if secret:
            forms |= _forms(secret)
    # Longest first: a secret that contains another is masked whole.
    for form in sorted(forms, key=len, reverse=True):
        text = text.replace(form, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


def redact_bytes(data: bytes, secrets: Iterable[str | None] = ()) -> bytes:
    """:func:`redact` for a body; bytes that are not UTF-8 are kept as they are."""
    if not data:
        return data
    text = data.decode("utf-8", "surrogateescape")
    return redact(text, secrets).encode("utf-8", "surrogateescape")

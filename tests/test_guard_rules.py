"""The guard's rules at their edges, through its public functions and Guard.

Boundaries (tolerance, timestamp length, body size), the reasons a sender
reads in a 401, content types with parameters, the allow-list on a missing
address, and the signing-key decoding of secrets ending in an ``X``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping

import pytest
from multidict import CIMultiDict, CIMultiDictProxy

from sips_async import SipsConfigError, WebhookConfig, WebhookVerificationError
from sips_async.webhooks import sign_headers, verify, verify_signature
from sips_async.webhooks._guard import (
    Guard,
    ip_allowed,
    parse_networks,
    signing_key,
)

from .factories import HOOK_SECRET

NOW = 1_800_000_000
KEY = b"0123456789abcdef0123456789abcdef"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
BODY = b'{"eventId": "1"}'


def signed(stamp: int | str, *, secret: str = SECRET) -> dict[str, str]:
    headers = sign_headers(secret, BODY, msg_id="msg_1", timestamp=NOW)
    if str(stamp) != str(NOW):
        key = signing_key(secret)
        mac = hmac.new(key, f"msg_1.{stamp}.".encode() + BODY, hashlib.sha256)
        headers["webhook-timestamp"] = str(stamp)
        headers["webhook-signature"] = "v1," + base64.b64encode(mac.digest()).decode()
    return headers


def check(
    headers: dict[str, str], *, now: float = NOW, tolerance: float = 300
) -> str | None:
    return verify_signature([SECRET], headers, BODY, tolerance=tolerance, now=now)


def test_sign_headers_declare_json() -> None:
    assert sign_headers(SECRET, BODY)["Content-Type"] == "application/json"


def test_a_timestamp_exactly_at_the_tolerance_is_accepted() -> None:
    assert check(signed(NOW), now=NOW + 300) is None
    assert check(signed(NOW), now=NOW - 300) is None
    assert check(signed(NOW), now=NOW + 301) == "signature timestamp outside tolerance"


def test_verify_defaults_to_a_300_second_tolerance() -> None:
    verify(BODY, signed(NOW), secrets=SECRET, now=NOW + 300)
    with pytest.raises(WebhookVerificationError) as caught:
        verify(BODY, signed(NOW), secrets=SECRET, now=NOW + 301)
    assert caught.value.reason == "signature timestamp outside tolerance"


def test_verify_without_secrets_says_so() -> None:
    with pytest.raises(SipsConfigError) as caught:
        verify(BODY, signed(NOW), secrets=[])
    assert str(caught.value) == "verify() needs at least one signing secret"


def test_timestamps_of_twelve_digits_are_read_thirteen_are_refused() -> None:
    twelve = 10**11  # 12 digits: a valid number, far outside the tolerance
    assert check(signed(twelve)) == "signature timestamp outside tolerance"
    assert check(signed(10**12)) == "bad signature timestamp"
    assert check(signed("12a")) == "bad signature timestamp"


def test_any_missing_signature_header_is_named() -> None:
    full = signed(NOW)
    for name in ("webhook-id", "webhook-timestamp", "webhook-signature"):
        partial = {k: v for k, v in full.items() if k != name}
        assert check(partial) == "missing signature headers"


def test_a_secret_whose_base64_ends_in_x_keeps_its_last_character() -> None:
    key = KEY[:30] + b"\x00\x00\x17"  # base64 ends "AAAX", no padding
    text = base64.b64encode(key).decode()
    assert text.rstrip("=").endswith("X")
    assert signing_key("whsec_" + text) == key
    assert signing_key(text.rstrip("=")) == key


def test_a_secret_that_is_not_base64_gets_the_full_explanation() -> None:
    with pytest.raises(SipsConfigError) as caught:
        signing_key("whsec_not base64!")
    assert str(caught.value) == (
        "a signing secret must be base64 (standard alphabet, optionally prefixed "
        "'whsec_', padding optional), as svix and Standard Webhooks print them"
    )


def test_an_allow_list_never_admits_a_missing_address() -> None:
    networks = parse_networks(["0.0.0.0/0", "::/0"])
    assert ip_allowed(None, networks) is False
    assert ip_allowed("", networks) is False
    assert ip_allowed("10.1.2.3", networks) is True


def test_a_network_with_host_bits_is_read_as_its_network() -> None:
    networks = parse_networks(["10.1.2.3/8"])
    assert ip_allowed("10.200.0.1", networks)
    assert not ip_allowed("11.0.0.1", networks)


def guard(**options: object) -> Guard:
    return Guard(WebhookConfig(secret=HOOK_SECRET, **options))  # type: ignore[arg-type]


def test_a_body_of_exactly_the_limit_is_let_in() -> None:
    g = guard(max_body_size=100)
    assert g.check_request({}, peer="127.0.0.1", token=HOOK_SECRET, length=100) is None
    refused = g.check_request({}, peer="127.0.0.1", token=HOOK_SECRET, length=101)
    assert refused is not None
    assert refused.status == 413


@pytest.mark.parametrize(
    "ctype",
    [
        "application/json",
        "application/json;charset=utf-8",
        "application/json; charset=utf-8",
        "Application/JSON; charset=utf-8; boundary=x",
        "application/cloudevents+json; charset=utf-8",
    ],
)
@pytest.mark.parametrize("kind", ["dict", "aiohttp"])
def test_json_content_types_with_parameters_are_let_in(ctype: str, kind: str) -> None:
    headers = _headers(kind, {"content-type": ctype})
    assert (
        guard().check_request(headers, peer="127.0.0.1", token=HOOK_SECRET, length=2)
        is None
    )


def _headers(kind: str, values: dict[str, str]) -> Mapping[str, str]:
    # A plain dict (another framework) or aiohttp's own headers: the guard
    # reads each its own way; both must judge alike.
    if kind == "dict":
        return dict(values)
    return CIMultiDictProxy(CIMultiDict(values))


@pytest.mark.parametrize("kind", ["dict", "aiohttp"])
@pytest.mark.parametrize(
    "ctype", ["text/plain; charset=utf-8", "application/xml", "APPLICATION/JSONX"]
)
def test_a_non_json_content_type_is_refused(kind: str, ctype: str) -> None:
    headers = _headers(kind, {"Content-Type": ctype})
    refused = guard().check_request(
        headers, peer="127.0.0.1", token=HOOK_SECRET, length=2
    )
    assert refused is not None
    assert refused.status == 415


@pytest.mark.parametrize("kind", ["dict", "aiohttp"])
def test_no_content_type_is_let_in(kind: str) -> None:
    headers = _headers(kind, {"X-Other": "1"})
    assert (
        guard().check_request(headers, peer="127.0.0.1", token=HOOK_SECRET, length=2)
        is None
    )


def test_repr_says_what_is_configured_and_nothing_secret() -> None:
    g = guard(signing_secrets=(SECRET,), allowed_ips=("10.0.0.0/8",))
    assert repr(g) == "<Guard secret=True signing_keys=1 allowed=1>"
    assert HOOK_SECRET not in repr(g)

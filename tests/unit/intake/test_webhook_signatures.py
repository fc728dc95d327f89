"""Webhook signatures: Shopify's HMAC of the body, Stripe's timestamped scheme."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from okrflow.intake.webhooks import PLATFORMS, SignatureError
from tests.webhooks import fixture, shopify_request, stripe_headers, stripe_signature

SECRET = "shpss_0f4c7b1de8a2"
STRIPE_SECRET = "whsec_5a0b6e2c7d9f41e3b8a6c2d0f1e7a9b3"
NOW = 1_770_715_800
shopify = PLATFORMS["shopify"]
stripe = PLATFORMS["stripe"]
BODY = fixture("shopify", "orders-create")
STRIPE_BODY = fixture("stripe", "checkout-session-completed")


def shopify_headers(body: bytes = BODY, secret: str = SECRET) -> dict[str, str]:
    return shopify_request(body, "orders/create", "b54557e4-bdd9-4b37-8a5f-bf7d70bcd043", secret)


def flipped(body: bytes, index: int = 10) -> bytes:
    return body[:index] + bytes([body[index] ^ 0x01]) + body[index + 1 :]


def reason(call: object) -> str:
    assert callable(call)
    with pytest.raises(SignatureError) as caught:
        call()
    return str(caught.value)


def test_registry_names_match() -> None:
    assert sorted(PLATFORMS) == ["shopify", "stripe"]
    assert all(platform.name == name for name, platform in PLATFORMS.items())


# Shopify


def test_shopify_valid_signature_passes() -> None:
    shopify.verify(shopify_headers(), BODY, SECRET, NOW)


def test_shopify_signature_with_surrounding_spaces_passes() -> None:
    headers = shopify_headers()
    headers["x-shopify-hmac-sha256"] = f" {headers['x-shopify-hmac-sha256']} "
    shopify.verify(headers, BODY, SECRET, NOW)


@pytest.mark.parametrize("index", [0, 10, len(BODY) - 1])
def test_shopify_flipped_byte_in_body_is_refused(index: int) -> None:
    assert reason(lambda: shopify.verify(shopify_headers(), flipped(BODY, index), SECRET, NOW)) == (
        "bad signature"
    )


def test_shopify_wrong_secret_is_refused() -> None:
    headers = shopify_headers(secret="shpss_another")
    assert reason(lambda: shopify.verify(headers, BODY, SECRET, NOW)) == "bad signature"


@pytest.mark.parametrize("value", [None, "", "   "])
def test_shopify_missing_signature_is_refused(value: str | None) -> None:
    headers = shopify_headers()
    del headers["x-shopify-hmac-sha256"]
    if value is not None:
        headers["x-shopify-hmac-sha256"] = value
    assert reason(lambda: shopify.verify(headers, BODY, SECRET, NOW)) == "missing signature"


@pytest.mark.parametrize(
    "value",
    ["not base64 at all", "é" * 44, "AAAA", "x" * 10_000],
)
def test_shopify_malformed_signature_is_refused(value: str) -> None:
    headers = {**shopify_headers(), "x-shopify-hmac-sha256": value}
    assert reason(lambda: shopify.verify(headers, BODY, SECRET, NOW)) == "bad signature"


def test_shopify_header_names_are_read_lower_case() -> None:
    # The caller lower-cases names (the brief of WebhookPlatform.verify); a mixed-case name is
    # therefore not found.
    headers = {k.title(): v for k, v in shopify_headers().items()}
    assert reason(lambda: shopify.verify(headers, BODY, SECRET, NOW)) == "missing signature"


@pytest.mark.parametrize("platform", ["shopify", "stripe"])
def test_empty_secret_is_a_configuration_error_not_a_bad_signature(platform: str) -> None:
    with pytest.raises(ValueError, match="secret is empty") as caught:
        PLATFORMS[platform].verify(shopify_headers(), BODY, "", NOW)
    assert not isinstance(caught.value, SignatureError)


# Stripe


def test_stripe_valid_signature_passes() -> None:
    stripe.verify(stripe_headers(STRIPE_BODY, STRIPE_SECRET, NOW), STRIPE_BODY, STRIPE_SECRET, NOW)


@pytest.mark.parametrize("skew", [-300, -1, 0, 1, 300])
def test_stripe_timestamp_within_300_seconds_passes(skew: int) -> None:
    headers = stripe_headers(STRIPE_BODY, STRIPE_SECRET, NOW + skew)
    stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)


@pytest.mark.parametrize("skew", [-301, 301, -86_400])
def test_stripe_timestamp_more_than_300_seconds_away_is_refused(skew: int) -> None:
    headers = stripe_headers(STRIPE_BODY, STRIPE_SECRET, NOW + skew)
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "expired timestamp"
    )


def test_stripe_nan_clock_fails_closed() -> None:
    headers = stripe_headers(STRIPE_BODY, STRIPE_SECRET, NOW)
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, float("nan"))) == (
        "expired timestamp"
    )


def test_stripe_any_matching_v1_passes() -> None:
    # While a secret is rolled, Stripe signs with both: the old one may come first.
    good = stripe_signature(STRIPE_BODY, STRIPE_SECRET, NOW)
    old = stripe_signature(STRIPE_BODY, "whsec_old", NOW)
    header = f"t={NOW},v1={old},v1={good},v0=6ffbb59b2300aae63f2720dd6d4b1d8e2d6e1f1e"
    stripe.verify({"stripe-signature": header}, STRIPE_BODY, STRIPE_SECRET, NOW)


def test_stripe_upper_case_hex_passes() -> None:
    good = stripe_signature(STRIPE_BODY, STRIPE_SECRET, NOW).upper()
    stripe.verify({"stripe-signature": f"t={NOW},v1={good}"}, STRIPE_BODY, STRIPE_SECRET, NOW)


def test_stripe_v0_alone_is_not_accepted() -> None:
    good = stripe_signature(STRIPE_BODY, STRIPE_SECRET, NOW)
    headers = {"stripe-signature": f"t={NOW},v0={good}"}
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "malformed signature header"
    )


def test_stripe_flipped_byte_in_body_is_refused() -> None:
    headers = stripe_headers(STRIPE_BODY, STRIPE_SECRET, NOW)
    assert reason(lambda: stripe.verify(headers, flipped(STRIPE_BODY), STRIPE_SECRET, NOW)) == (
        "bad signature"
    )


def test_stripe_wrong_secret_is_refused() -> None:
    headers = stripe_headers(STRIPE_BODY, "whsec_another", NOW)
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "bad signature"
    )


def test_stripe_timestamp_is_signed() -> None:
    # Moving t (to dodge the 300-second window) breaks the signature.
    good = stripe_signature(STRIPE_BODY, STRIPE_SECRET, NOW - 3600)
    headers = {"stripe-signature": f"t={NOW},v1={good}"}
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "bad signature"
    )


def test_stripe_missing_header_is_refused() -> None:
    assert reason(lambda: stripe.verify({}, STRIPE_BODY, STRIPE_SECRET, NOW)) == "missing signature"
    headers = {"stripe-signature": " "}
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "missing signature"
    )


GOOD = "5257a869e7ecebeda32affa62cdca3fa51cad7e77a0e56ff536d0ce8e108d8bd"


@pytest.mark.parametrize(
    "header",
    [
        "garbage",
        f"v1={GOOD}",  # no t
        f"t={NOW}",  # no v1
        f"t={NOW},t={NOW},v1={GOOD}",  # two t
        f"t=,v1={GOOD}",
        f"t=-5,v1={GOOD}",
        f"t=+{NOW},v1={GOOD}",
        f"t=1.5,v1={GOOD}",
        f"t=١٢٣,v1={GOOD}",  # Arabic-Indic digits: int() would take them
        f"t={'9' * 5000},v1={GOOD}",  # int() would refuse over 4,300 digits
        f"t={NOW},v1={GOOD},junk",
    ],
)
def test_stripe_malformed_header_is_refused(header: str) -> None:
    headers = {"stripe-signature": header}
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "malformed signature header"
    )


@pytest.mark.parametrize("v1", ["", "zz", "é" * 64, GOOD[:-1], GOOD + "0"])
def test_stripe_malformed_v1_is_a_bad_signature(v1: str) -> None:
    headers = {"stripe-signature": f"t={NOW},v1={v1}"}
    assert reason(lambda: stripe.verify(headers, STRIPE_BODY, STRIPE_SECRET, NOW)) == (
        "bad signature"
    )


# Whatever arrives, verify raises SignatureError or nothing.

header_names = st.sampled_from(
    ["x-shopify-hmac-sha256", "x-shopify-topic", "stripe-signature", "content-type"]
) | st.text(max_size=20)
stripe_like = st.builds(
    lambda t, sigs: ",".join([f"t={t}", *(f"v1={s}" for s in sigs)]),
    st.one_of(st.integers(-(10**20), 10**20).map(str), st.text(max_size=12)),
    st.lists(st.text(max_size=70) | st.text("0123456789abcdef", min_size=64, max_size=64)),
)
header_values = st.text() | stripe_like | st.binary(max_size=40).map(lambda b: b.hex())


@given(
    platform=st.sampled_from(sorted(PLATFORMS)),
    headers=st.dictionaries(header_names, header_values, max_size=5),
    body=st.binary(max_size=300),
    secret=st.text(min_size=1, max_size=40),
    now=st.floats(allow_nan=True, allow_infinity=True) | st.integers(0, 2**40).map(float),
)
def test_verify_raises_only_signature_errors(
    platform: str, headers: dict[str, str], body: bytes, secret: str, now: float
) -> None:
    try:
        PLATFORMS[platform].verify(headers, body, secret, now)
    except SignatureError:
        return
    # Passing needs a valid HMAC, which random input does not produce.
    raise AssertionError("an unsigned request was accepted")

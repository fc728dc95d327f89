"""A token's form and hash."""

from __future__ import annotations

import hashlib

from okrflow.access.tokens import hash_token, new_token

# --- token form and hash -----------------------------------------------------------------


def test_new_tokens_are_prefixed_random_and_url_safe() -> None:
    tokens = {new_token() for _ in range(1000)}
    assert len(tokens) == 1000
    for token in tokens:
        assert token.startswith("okr_")
        assert len(token) == 4 + 43  # 32 bytes, URL-safe base64 without padding
        assert set(token[4:]) <= set(
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
        )


def test_hash_is_hex_sha256_of_the_token() -> None:
    assert hash_token("abc") == ("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    token = new_token()
    assert hash_token(token) == hashlib.sha256(token.encode()).hexdigest()
    assert len(hash_token(token)) == 64

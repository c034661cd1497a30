"""Signatures are the tokens PyJWT makes for the same claims, and verify as the SDKs do."""

from __future__ import annotations

import jwt
import pytest
from qstash_emulator.core.signing import SIGNATURE_TTL, body_hash, sign, verify

KEY = "sig_7kYjw48mhY7kAjqNGcy6cr29RJ6r"


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9000/hook",
        "https://example.com/ü/path?a=1&b=é",
        'http://x/"quoted"\\back\nline',
    ],
)
def test_the_token_is_byte_for_byte_what_pyjwt_makes(url: str) -> None:
    t = 1_700_000_000
    ours = sign(KEY, url=url, body=b"body\x00", now=t, jti="jwt_0123abcd")
    claims = {
        "iss": "Upstash",
        "sub": url,
        "exp": t + SIGNATURE_TTL,
        "nbf": t,
        "iat": t,
        "jti": "jwt_0123abcd",
        "body": body_hash(b"body\x00"),
    }
    assert ours == jwt.encode(claims, KEY, algorithm="HS256")


def test_verify_accepts_the_token_and_refuses_another_body() -> None:
    import time

    token = sign(KEY, url="http://a/b", body=b"x", now=time.time(), jti="jwt_1")
    assert verify(token, [KEY], body=b"x", url="http://a/b")["sub"] == "http://a/b"
    with pytest.raises(ValueError, match="body hash"):
        verify(token, [KEY], body=b"y")

"""Upstash-Signature: a JWT signed HS256 with the user's current signing key."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json

import jwt

__all__ = ["SIGNATURE_TTL", "body_hash", "sign", "verify"]

# QStash signatures are valid for five minutes.
SIGNATURE_TTL = 300


def body_hash(body: bytes) -> str:
    """The JWT's `body` claim: the base64url SHA-256 of the body (padded, as QStash signs it)."""
    return base64.urlsafe_b64encode(hashlib.sha256(body).digest()).decode()


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


# json.dumps of a str (ASCII escapes, as PyJWT writes it), without building an encoder per call.
_json_string = json.encoder.encode_basestring_ascii

# The JWT header never changes; encoding it once saves work on every delivery.
_HEADER = _b64url(b'{"alg":"HS256","typ":"JWT"}')


def sign(key: str, *, url: str, body: bytes, now: float, jti: str) -> str:
    """Sign a delivery of `body` to `url`.

    `now` is the verifier's wall clock, not the virtual clock: a Receiver checks nbf/exp against
    its own time, so a virtual clock a day ahead must not make every signature "immature".
    """
    t = int(now)
    # The claims as PyJWT would serialise them (compact JSON, this key order), written directly:
    # only the URL can need escaping; jti and the body hash are base64/hex.
    claims = (
        f'{{"iss":"Upstash","sub":{_json_string(url)},"exp":{t + SIGNATURE_TTL},"nbf":{t},'
        f'"iat":{t},"jti":"{jti}","body":"{body_hash(body)}"}}'
    )
    payload = _b64url(claims.encode())
    signing_input = f"{_HEADER}.{payload}".encode()
    mac = hmac.digest(key.encode(), signing_input, "sha256")  # OpenSSL's one-shot HMAC
    return f"{_HEADER}.{payload}.{_b64url(mac)}"


def verify(
    signature: str, keys: list[str], *, body: bytes, url: str | None = None
) -> dict[str, object]:
    """Check a signature the way the official Receivers do; raises ValueError when invalid."""
    last: Exception | None = None
    for key in keys:
        try:
            claims: dict[str, object] = jwt.decode(
                signature,
                key,
                algorithms=["HS256"],
                issuer="Upstash",
                options={"require": ["iss", "sub", "exp", "nbf"]},
                leeway=1,
            )
        except jwt.PyJWTError as exc:
            last = exc
            continue
        if url is not None and claims["sub"] != url:
            raise ValueError(f"signature subject {claims['sub']!r} is not {url!r}")
        if str(claims.get("body", "")).rstrip("=") != body_hash(body).rstrip("="):
            raise ValueError("signature body hash does not match the body")
        return claims
    raise ValueError(f"invalid signature: {last}")

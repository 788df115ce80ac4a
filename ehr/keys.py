"""A CDS client's credentials: an ES384 key pair (with its JWKS) and the JWT for one call."""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from jwt.algorithms import ECAlgorithm


def generate_keys(kid: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """A new ES384 (P-384) key pair as (private JWK, public JWK Set)."""
    private_key = ec.generate_private_key(ec.SECP384R1())
    private_jwk: dict[str, Any] = json.loads(ECAlgorithm.to_jwk(private_key))
    private_jwk.update({"kid": kid, "alg": "ES384", "use": "sig"})
    public_jwk = {k: v for k, v in private_jwk.items() if k != "d"}
    return private_jwk, {"keys": [public_jwk]}


def mint_token(
    private_jwk: dict[str, Any],
    *,
    iss: str,
    aud: str,
    ttl: int = 300,
    tenant: str | None = None,
    jku: str | None = None,
    now: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    """A CDS client JWT as the spec describes it (ES384, kid, typ JWT, fresh jti)."""
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": issued,
        "exp": issued + ttl,
        "jti": str(uuid.uuid4()),
    }
    if tenant:
        claims["tenant"] = tenant
    claims.update(extra or {})
    headers: dict[str, Any] = {"kid": private_jwk.get("kid"), "typ": "JWT"}
    if jku:
        headers["jku"] = jku
    key = jwt.PyJWK(private_jwk, algorithm="ES384")
    return jwt.encode(claims, key.key, algorithm="ES384", headers=headers)

"""Who may call the hook, explain and feedback endpoints: CDS client JWT verification.

Trust model (CDS Hooks 2.0.1 "Trusting CDS Clients"; checklist section J):

1. ``Authorization: Bearer <JWT>`` is required (discovery stays public).
2. The header ``alg`` must be one of ``KETAMINE_CDS_JWT_ALGORITHMS`` (ES384 and RS384 by default;
   ``none`` and HMAC can never be configured), and the key type must fit it: the token never
   chooses the key type (no algorithm confusion).
3. ``iss`` must be a configured trusted client. Its keys come from the token's ``jku`` when that
   exact URL is on the client's ``jku_allowlist``; otherwise from the client's configured JWKS
   (URL or inline). Any other ``jku`` is ignored and never fetched: a token is refused only if
   no key the client is configured with verifies it.
4. The key is chosen by ``kid`` (a token without ``kid`` is accepted only when the JWKS holds a
   single usable key). An unknown ``kid`` triggers at most one JWKS refresh per
   ``jwks_refresh_interval_seconds``.
5. ``aud`` must equal the endpoint URL built from ``KETAMINE_CDS_PUBLIC_BASE_URL`` (never from the
   Host header): ``{base}/cds-services/{id}``; feedback and explain also accept their own URL.
6. ``exp`` (required) not past, ``iat`` (required) and ``nbf`` (if present) not in the future, each
   with ``jwt_clock_skew_seconds`` (60 s) of leeway.
7. ``jti`` is required and may be used once: it is remembered until the token expires, in the
   shared store (``service.store``), so a token accepted by one worker or replica is refused by
   every other. If the store cannot be reached the token is refused (503, ``StoreUnavailable``),
   never accepted unchecked.
8. ``tenant`` (optional) is passed to the logs.

JWKS documents are cached for ``jwks_cache_seconds`` and fetched with a short timeout, no
redirects. If a JWKS cannot be fetched and the cache has expired, tokens are refused: an outage
never turns into accepting tokens. The jti memory is the app's ``ReplayGuard``: the store-backed
one (``service.operations.StoreReplayGuard``) in the service; ``ReplayCache`` (one process's
memory) only where no store exists (a ``Verifier`` used on its own).

Development mode (``KETAMINE_CDS_ALLOW_UNAUTHENTICATED``, loopback only) skips all of this.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import httpx
import jwt
import orjson

from service import metrics
from service.errors import NotAuthenticated
from service.settings import Settings, TrustedClient

logger = logging.getLogger(__name__)

KEY_TYPES = {"ES": "EC", "RS": "RSA", "PS": "RSA"}
CURVES = {"ES256": "P-256", "ES384": "P-384", "ES512": "P-521"}


@dataclass(frozen=True)
class Caller:
    """The authenticated CDS client of one request (or the development-mode stand-in)."""

    iss: str | None
    tenant: str | None
    jti: str | None
    client: TrustedClient | None


DEV_CALLER = Caller(iss=None, tenant=None, jti=None, client=None)


class Rejected(NotAuthenticated):
    """A token failed verification; ``reason`` is safe to log and to return."""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the CDS client JWT was rejected: {reason}")
        self.reason = reason


class JwksCache:
    """JWK Sets by URL, with a TTL and a rate limit on forced refreshes."""

    def __init__(self, client: httpx.AsyncClient, settings: Settings) -> None:
        self._client = client
        self._ttl = settings.jwks_cache_seconds
        self._refresh_interval = settings.jwks_refresh_interval_seconds
        self._timeout = settings.jwks_timeout_seconds
        self._keys: dict[str, tuple[float, list[dict[str, Any]]]] = {}
        self._last_fetch: dict[str, float] = {}
        self._lock = asyncio.Lock()

    async def keys(self, url: str, *, refresh: bool = False) -> list[dict[str, Any]]:
        now = time.monotonic()
        cached = self._keys.get(url)
        fresh = cached is not None and now - cached[0] < self._ttl
        if cached is not None and fresh and not refresh:
            return cached[1]
        if (
            cached is not None
            and refresh
            and now - self._last_fetch.get(url, 0.0) < (self._refresh_interval)
        ):
            return cached[1]  # refreshed recently: do not let unknown kids hammer the JWKS
        async with self._lock:
            self._last_fetch[url] = time.monotonic()
            try:
                keys = await self._fetch(url)
            except Rejected:
                if cached is not None and fresh:
                    return cached[1]
                raise
            self._keys[url] = (time.monotonic(), keys)
            return keys

    async def _fetch(self, url: str) -> list[dict[str, Any]]:
        try:
            response = await self._client.get(
                url,
                timeout=httpx.Timeout(self._timeout),
                follow_redirects=False,
                headers={"Accept": "application/json"},
            )
        except httpx.HTTPError as exc:
            logger.warning("jwks fetch failed error=%s", type(exc).__name__)
            raise Rejected("the client's key set could not be fetched") from exc
        if response.status_code != 200:
            logger.warning("jwks fetch failed status=%d", response.status_code)
            raise Rejected("the client's key set could not be fetched")
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError as exc:
            raise Rejected("the client's key set is not JSON") from exc
        keys = body.get("keys") if isinstance(body, dict) else None
        if not isinstance(keys, list):
            raise Rejected("the client's key set has no keys")
        return [k for k in keys if isinstance(k, dict)]


class ReplayGuard(Protocol):
    async def claim(self, iss: str, jti: str, expires_at: float, now: float) -> None:
        """Remember (iss, jti) until ``expires_at``; raise ``Rejected`` if it is already
        remembered (a replay). Times are POSIX seconds."""


class ReplayCache:
    """Seen (iss, jti) pairs in this process's memory, kept until the token's expiry (plus
    skew). Not shared between processes: the service uses the store instead."""

    def __init__(self, max_entries: int = 200_000) -> None:
        self._seen: dict[tuple[str, str], float] = {}
        self._max = max_entries

    def check_and_remember(self, iss: str, jti: str, expires_at: float, now: float) -> None:
        key = (iss, jti)
        if key in self._seen and self._seen[key] >= now:
            raise Rejected("jti was already used (replay)")
        if len(self._seen) >= self._max:
            self._seen = {k: v for k, v in self._seen.items() if v >= now}
            if len(self._seen) >= self._max:
                raise Rejected("too many live tokens; try again later")
        self._seen[key] = expires_at

    async def claim(self, iss: str, jti: str, expires_at: float, now: float) -> None:
        self.check_and_remember(iss, jti, expires_at, now)


def _bearer(header: str | None) -> str:
    if not header:
        raise Rejected("no bearer token (send Authorization: Bearer <JWT>)")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Rejected("the Authorization header is not a bearer token")
    return token.strip()


def _select_key(keys: list[dict[str, Any]], kid: str | None, alg: str) -> dict[str, Any] | None:
    kty = KEY_TYPES[alg[:2]]
    usable = [
        k
        for k in keys
        if k.get("kty") == kty
        and k.get("use", "sig") == "sig"
        and k.get("alg", alg) == alg
        and (kty != "EC" or k.get("crv") == CURVES.get(alg))
    ]
    if kid is None:
        return usable[0] if len(usable) == 1 else None
    return next((k for k in usable if k.get("kid") == kid), None)


class Verifier:
    """Verifies CDS client JWTs against the configured trusted clients."""

    def __init__(
        self,
        settings: Settings,
        http_client: httpx.AsyncClient,
        clock: Callable[[], float],
        replay: ReplayGuard | None = None,
    ) -> None:
        self._settings = settings
        self._jwks = JwksCache(http_client, settings)
        self._replay: ReplayGuard = replay if replay is not None else ReplayCache()
        self._clock = clock

    async def _keys_for(
        self, client: TrustedClient, header: dict[str, Any], *, refresh: bool
    ) -> list[dict[str, Any]]:
        jku = header.get("jku")
        if isinstance(jku, str) and jku in client.jku_allowlist:
            return await self._jwks.keys(jku, refresh=refresh)
        # Any other jku is ignored, never fetched: the client's configured keys decide (the CDS
        # Hooks sandbox always sends its jku, also to services that hold its key inline).
        if client.jwks is not None:
            return [k for k in client.jwks.get("keys", []) if isinstance(k, dict)]
        assert client.jwks_url is not None
        return await self._jwks.keys(client.jwks_url, refresh=refresh)

    async def verify(self, authorization: str | None, audiences: tuple[str, ...]) -> Caller:
        token = _bearer(authorization)
        try:
            header = jwt.get_unverified_header(token)
            unverified = jwt.decode(token, options={"verify_signature": False})
        except jwt.PyJWTError as exc:
            raise Rejected("the token is not a well-formed JWT") from exc
        alg = header.get("alg")
        if not isinstance(alg, str) or alg not in self._settings.algorithms:
            raise Rejected(f"algorithm {str(alg)[:10]!r} is not accepted")
        if header.get("typ") not in (None, "JWT"):
            raise Rejected("typ must be JWT")
        iss = unverified.get("iss")
        client = self._settings.clients.get(iss) if isinstance(iss, str) else None
        if client is None:
            raise Rejected("iss is not a trusted CDS client")
        kid = header.get("kid") if isinstance(header.get("kid"), str) else None
        key = _select_key(await self._keys_for(client, header, refresh=False), kid, alg)
        if key is None and kid is not None:
            key = _select_key(await self._keys_for(client, header, refresh=True), kid, alg)
        if key is None:
            raise Rejected("no key in the client's key set matches kid and alg")
        try:
            public_key = jwt.PyJWK(key, algorithm=alg)
            claims = jwt.decode(
                token,
                key=public_key,
                algorithms=[alg],
                audience=list(audiences),
                issuer=client.iss,
                options={
                    "require": ["iss", "aud", "exp", "iat", "jti"],
                    "verify_exp": False,
                    "verify_iat": False,
                    "verify_nbf": False,
                },
            )
        except jwt.InvalidAudienceError as exc:
            raise Rejected("aud is not this endpoint's URL") from exc
        except jwt.MissingRequiredClaimError as exc:
            raise Rejected(f"required claim {exc.claim!r} is missing") from exc
        except jwt.InvalidSignatureError as exc:
            raise Rejected("the signature does not verify") from exc
        except jwt.PyJWTError as exc:
            raise Rejected(f"the token is invalid ({type(exc).__name__})") from exc
        now = self._clock()
        skew = self._settings.jwt_clock_skew_seconds
        exp, iat, nbf = claims.get("exp"), claims.get("iat"), claims.get("nbf")
        if not isinstance(exp, int | float) or not isinstance(iat, int | float):
            raise Rejected("exp and iat must be numeric dates")
        if now > exp + skew:
            raise Rejected("the token has expired")
        if iat > now + skew:
            raise Rejected("iat is in the future")
        if nbf is not None and (not isinstance(nbf, int | float) or nbf > now + skew):
            raise Rejected("the token is not valid yet (nbf)")
        jti = claims.get("jti")
        if not isinstance(jti, str) or not jti:
            raise Rejected("jti must be a non-empty string")
        await self._replay.claim(client.iss, jti, exp + skew, now)
        tenant = claims.get("tenant")
        return Caller(
            iss=client.iss,
            tenant=tenant if isinstance(tenant, str) else None,
            jti=jti,
            client=client,
        )


def audiences(settings: Settings, service_id: str, endpoint: str) -> tuple[str, ...]:
    """The ``aud`` values an endpoint accepts, from the configured public base URL only."""
    base = f"{settings.public_base_url}/cds-services/{service_id}"
    if endpoint == "service":
        return (base,)
    return (f"{base}/{endpoint}", base)


async def authorise(
    settings: Settings,
    verifier: Verifier | None,
    authorization: str | None,
    service_id: str,
    endpoint: str,
) -> Caller:
    """The caller of a hook/explain/feedback request, or 401 (``NotAuthenticated``)."""
    if settings.allow_unauthenticated:
        return DEV_CALLER
    if verifier is None or not settings.clients:
        metrics.jwt_rejected("no trusted CDS clients")
        raise NotAuthenticated(
            "no trusted CDS clients are configured (KETAMINE_CDS_TRUSTED_CLIENTS); for local "
            "development set KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true on a loopback bind"
        )
    try:
        caller = await verifier.verify(authorization, audiences(settings, service_id, endpoint))
    except Rejected as exc:
        logger.info("jwt rejected service=%s reason=%s", service_id, exc.reason)
        metrics.jwt_rejected(exc.reason)
        raise
    logger.info(
        "jwt accepted service=%s iss=%s tenant=%s jti=%s",
        service_id,
        caller.iss,
        caller.tenant or "-",
        (caller.jti or "-")[:64],
    )
    return caller

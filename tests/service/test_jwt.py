"""CDS client JWT verification: hostile tokens get the exact status and touch no FHIR server."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import logging
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest
import respx
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from ehr import cli
from ehr.keys import generate_keys, mint_token
from service.auth import Verifier
from service.main import create_app
from service.settings import Settings
from tests.factories import NOW, mdd, patient
from tests.hook_requests import hook_request
from tests.shared_data import SUBSET_CDS_HOOKS

BASE = "https://cds.example.org"
AUD = f"{BASE}/cds-services/trd-ketamine-screen"
ISS_A = "https://ehr-a.example"
ISS_B = "https://ehr-b.example"
FHIR_A = "https://ehr-a.example/fhir"
FHIR_B = "https://ehr-b.example/fhir"
JWKS_B = "https://ehr-b.example/.well-known/jwks.json"
JKU_A = "https://ehr-a.example/jwks"
T0 = int(NOW.timestamp())


def _jwk(key: Any, kid: str, alg: str) -> dict[str, Any]:
    algorithm = ECAlgorithm if isinstance(key, ec.EllipticCurvePrivateKey) else RSAAlgorithm
    public = json.loads(algorithm.to_jwk(key.public_key()))
    public.update({"kid": kid, "alg": alg, "use": "sig"})
    return public


class Keys:
    def __init__(self) -> None:
        self.a = ec.generate_private_key(ec.SECP384R1())
        self.b = ec.generate_private_key(ec.SECP384R1())
        self.other = ec.generate_private_key(ec.SECP384R1())
        self.p256 = ec.generate_private_key(ec.SECP256R1())
        self.rsa = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.jwks_a = {"keys": [_jwk(self.a, "a1", "ES384"), _jwk(self.rsa, "r1", "RS384")]}
        self.jwks_b = {"keys": [_jwk(self.b, "b1", "ES384")]}


@pytest.fixture(scope="module")
def keys() -> Keys:
    return Keys()


def _settings(keys: Keys, **overrides: Any) -> Settings:
    clients = [
        {"iss": ISS_A, "jwks": keys.jwks_a, "jku_allowlist": [JKU_A], "fhir_servers": [FHIR_A]},
        {"iss": ISS_B, "jwks_url": JWKS_B, "fhir_servers": [FHIR_B]},
    ]
    values: dict[str, Any] = {
        "trusted_clients": json.dumps(clients),
        "public_base_url": BASE,
        "jwks_refresh_interval_seconds": 30,
    }
    values.update(overrides)
    return Settings(**values)


def token(
    key: Any,
    *,
    kid: str | None = "a1",
    alg: str = "ES384",
    iss: str = ISS_A,
    aud: Any = AUD,
    drop: tuple[str, ...] = (),
    headers: dict[str, Any] | None = None,
    **claims: Any,
) -> str:
    payload: dict[str, Any] = {
        "iss": iss,
        "aud": aud,
        "iat": T0,
        "exp": T0 + 300,
        "jti": str(uuid.uuid4()),
    }
    payload.update(claims)
    for name in drop:
        payload.pop(name, None)
    header: dict[str, Any] = {"typ": "JWT"}
    if kid is not None:
        header["kid"] = kid
    header.update(headers or {})
    return jwt.encode(payload, key, algorithm=alg, headers=header)


def _b64(data: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def hs256_with_public_key(keys: Keys) -> str:
    """The classic algorithm-confusion token: HMAC-signed with the client's public key as secret."""
    secret = keys.a.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    header = _b64({"alg": "HS256", "typ": "JWT", "kid": "a1"})
    body = _b64({"iss": ISS_A, "aud": AUD, "iat": T0, "exp": T0 + 300, "jti": str(uuid.uuid4())})
    mac = hmac.new(secret, f"{header}.{body}".encode(), hashlib.sha256).digest()
    return f"{header}.{body}." + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def unsigned(alg: str = "none") -> str:
    header = _b64({"alg": alg, "typ": "JWT", "kid": "a1"})
    body = _b64({"iss": ISS_A, "aud": AUD, "iat": T0, "exp": T0 + 300, "jti": "x"})
    return f"{header}.{body}."


@pytest.fixture
def ehr(keys: Keys) -> Iterator[respx.MockRouter]:
    """FHIR servers and the JWKS endpoint (hostile tests assert the FHIR routes were not hit)."""
    resources = [patient(), mdd()]
    with respx.mock(assert_all_called=False) as router:
        for base in (FHIR_A, FHIR_B):
            router.get(f"{base}/Patient/p1", name=f"patient-{base}").mock(
                return_value=httpx.Response(200, json=resources[0])
            )
            router.get(
                url__regex=rf"{base}/[A-Za-z]+\?.*",
                name=f"search-{base}",
            ).mock(
                return_value=httpx.Response(
                    200, json={"resourceType": "Bundle", "type": "searchset", "entry": []}
                )
            )
        router.get(JWKS_B, name="jwks-b").mock(return_value=httpx.Response(200, json=keys.jwks_b))
        yield router


@pytest.fixture
def app_client(keys: Keys, ehr: respx.MockRouter) -> Iterator[Callable[..., TestClient]]:
    clients: list[TestClient] = []

    def make(**overrides: Any) -> TestClient:
        test_client = TestClient(create_app(_settings(keys, **overrides), clock=lambda: NOW))
        test_client.__enter__()
        clients.append(test_client)
        return test_client

    yield make
    for c in clients:
        c.__exit__(None, None, None)


def _body(fhir_server: str = FHIR_A) -> dict[str, Any]:
    return hook_request("trd-ketamine-screen", [], mode="fetch", fhir_server=fhir_server)


def _post(
    client: TestClient,
    bearer: str | None,
    body: Any = None,
    path: str = "/cds-services/trd-ketamine-screen",
    **kw: Any,
) -> httpx.Response:
    headers = dict(kw.pop("headers", {}))
    if bearer is not None:
        headers["Authorization"] = f"Bearer {bearer}"
    if isinstance(body, (bytes, str)):
        return client.post(
            path, content=body, headers={**headers, "Content-Type": "application/json"}
        )
    return client.post(path, json=body if body is not None else _body(), headers=headers)


def _fhir_requests(router: respx.MockRouter) -> int:
    return sum(
        r.call_count
        for r in router.routes
        if r.name and (r.name.startswith("patient-") or r.name.startswith("search-"))
    )


HOSTILE: list[tuple[str, Callable[[Keys], str | None], int]] = [
    ("no-authorization-header", lambda k: None, 401),
    ("not-a-jwt", lambda k: "not.a.jwt", 401),
    ("expired", lambda k: token(k.a, exp=T0 - 120, iat=T0 - 420), 401),
    ("iat-in-future", lambda k: token(k.a, iat=T0 + 600, exp=T0 + 900), 401),
    ("nbf-in-future", lambda k: token(k.a, nbf=T0 + 600), 401),
    ("wrong-aud", lambda k: token(k.a, aud=f"{BASE}/cds-services/ketamine-order-safety"), 401),
    ("aud-of-discovery", lambda k: token(k.a, aud=f"{BASE}/cds-services"), 401),
    ("unknown-iss", lambda k: token(k.a, iss="https://evil.example"), 401),
    ("bad-signature", lambda k: token(k.other), 401),
    ("alg-none", lambda k: unsigned("none"), 401),
    ("hs256-with-public-key", lambda k: hs256_with_public_key(k), 401),
    ("rs256-not-allowed", lambda k: token(k.rsa, alg="RS256", kid="r1"), 401),
    ("es384-header-with-p256-key", lambda k: token(k.p256, alg="ES256", kid="a1"), 401),
    (
        "unlisted-jku-with-a-key-the-client-does-not-have",
        lambda k: token(k.other, headers={"jku": "https://evil.example/jwks"}),
        401,
    ),
    ("kid-unknown", lambda k: token(k.a, kid="zz"), 401),
    ("typ-not-jwt", lambda k: token(k.a, headers={"typ": "at+jwt"}), 401),
    ("missing-exp", lambda k: token(k.a, drop=("exp",)), 401),
    ("missing-iat", lambda k: token(k.a, drop=("iat",)), 401),
    ("missing-jti", lambda k: token(k.a, drop=("jti",)), 401),
    ("missing-aud", lambda k: token(k.a, drop=("aud",)), 401),
    ("missing-iss", lambda k: token(k.a, drop=("iss",)), 401),
    ("client-b-key-for-client-a-iss", lambda k: token(k.b, kid="b1"), 401),
]


@pytest.mark.parametrize(("case", "make_token", "status"), HOSTILE, ids=[c[0] for c in HOSTILE])
def test_jwt_hostile_token_rejected_without_fhir_request(
    case: str, make_token: Callable[[Keys], str | None], status: int, keys: Keys, app_client, ehr
) -> None:
    """Verify that each hostile token gets its exact status, an OperationOutcome, no FHIR call."""
    client = app_client()
    response = _post(client, make_token(keys))
    assert response.status_code == status, response.text
    assert response.json()["resourceType"] == "OperationOutcome"
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert _fhir_requests(ehr) == 0


def test_jwt_valid_es384_token_accepted_and_fhir_queried(keys: Keys, app_client, ehr) -> None:
    """Verify that a well-formed ES384 token of a trusted client is accepted (the control case)."""
    response = _post(app_client(), token(keys.a))
    assert response.status_code == 200, response.text
    assert _fhir_requests(ehr) > 0


def test_jwt_valid_rs384_token_accepted(keys: Keys, app_client) -> None:
    """Verify that RS384 with an RSA key from the client's JWKS is accepted."""
    assert _post(app_client(), token(keys.rsa, alg="RS384", kid="r1")).status_code == 200


def test_jwt_aud_as_single_element_array_accepted(keys: Keys, app_client) -> None:
    """Verify that aud may be a one-element array (checklist item 99)."""
    assert _post(app_client(), token(keys.a, aud=[AUD])).status_code == 200


def test_jwt_aud_from_forged_host_header_rejected(keys: Keys, app_client, ehr) -> None:
    """Verify that aud is built from the configured base URL, never from the Host header."""
    forged = token(keys.a, aud="https://evil.example/cds-services/trd-ketamine-screen")
    response = _post(app_client(), forged, headers={"Host": "evil.example"})
    assert response.status_code == 401
    assert _fhir_requests(ehr) == 0


def test_jwt_replayed_jti_rejected(keys: Keys, app_client, ehr) -> None:
    """Verify that the same jti is accepted once and then refused."""
    client = app_client()
    once = token(keys.a, jti="fixed-jti-1")
    assert _post(client, once).status_code == 200
    calls = _fhir_requests(ehr)
    assert _post(client, once).status_code == 401
    assert _fhir_requests(ehr) == calls


def test_jwt_fhir_server_of_another_client_forbidden(keys: Keys, app_client, ehr) -> None:
    """Verify that a valid token may not name another client's FHIR server (403, no request)."""
    response = _post(app_client(), token(keys.a), body=_body(FHIR_B))
    assert response.status_code == 403
    assert response.json()["resourceType"] == "OperationOutcome"
    assert _fhir_requests(ehr) == 0


def test_jwt_jwks_url_fetched_cached_and_refreshed_once_for_unknown_kid(
    keys: Keys, app_client, ehr
) -> None:
    """Verify that client B's JWKS is fetched once, and an unknown kid refreshes it at most once."""
    client = app_client(jwks_refresh_interval_seconds=0.3)
    assert _post(client, token(keys.b, iss=ISS_B, kid="b1"), body=_body(FHIR_B)).status_code == 200
    assert _post(client, token(keys.b, iss=ISS_B, kid="b1"), body=_body(FHIR_B)).status_code == 200
    assert ehr.routes["jwks-b"].call_count == 1
    for _ in range(3):  # within the refresh interval of the first fetch: no refresh
        assert (
            _post(client, token(keys.b, iss=ISS_B, kid="nope"), body=_body(FHIR_B)).status_code
            == 401
        )
    assert ehr.routes["jwks-b"].call_count == 1
    time.sleep(0.35)
    for _ in range(3):  # one refresh, then rate-limited again
        assert (
            _post(client, token(keys.b, iss=ISS_B, kid="nope"), body=_body(FHIR_B)).status_code
            == 401
        )
    assert ehr.routes["jwks-b"].call_count == 2


def test_jwt_jwks_outage_rejects_tokens(keys: Keys, app_client, ehr) -> None:
    """Verify that a JWKS outage never turns into accepting tokens."""
    ehr.routes["jwks-b"].mock(return_value=httpx.Response(503))
    response = _post(app_client(), token(keys.b, iss=ISS_B, kid="b1"), body=_body(FHIR_B))
    assert response.status_code == 401
    assert _fhir_requests(ehr) == 0


def test_jwt_jku_on_allow_list_is_used(keys: Keys, app_client, ehr) -> None:
    """Verify that an allow-listed jku is fetched and its keys verify the token."""
    ehr.get(JKU_A, name="jku-a").mock(return_value=httpx.Response(200, json=keys.jwks_a))
    assert _post(app_client(), token(keys.a, headers={"jku": JKU_A})).status_code == 200
    assert ehr.routes["jku-a"].call_count == 1


@pytest.mark.parametrize(
    ("signer", "status"),
    [("a", 200), ("other", 401)],
    ids=["configured-key-accepted", "foreign-key-refused"],
)
def test_jwt_unlisted_jku_ignored_never_fetched_configured_keys_decide(
    signer: str, status: int, keys: Keys, app_client, ehr
) -> None:
    """Verify that a jku off the allow-list is never fetched and the client's configured keys
    decide: a token signed with one of them is accepted, any other key is refused."""
    evil = ehr.get("https://evil.example/jwks", name="evil").mock(
        return_value=httpx.Response(200, json={"keys": [_jwk(keys.other, "a1", "ES384")]})
    )
    signed = token(getattr(keys, signer), headers={"jku": "https://evil.example/jwks"})
    assert _post(app_client(), signed).status_code == status
    assert evil.call_count == 0


@pytest.mark.parametrize(
    ("iss", "kid", "signer", "server", "status"),
    [
        (ISS_A, "a1", "a", "https://global.example/fhir", 403),
        (ISS_A, "a1", "a", FHIR_A, 200),
    ],
    ids=["own-list-client-refused-a-global-server", "own-list-client-own-server"],
)
def test_jwt_client_with_own_fhir_list_may_use_only_that_list(
    iss: str, kid: str, signer: str, server: str, status: int, keys: Keys, app_client, ehr
) -> None:
    """Verify that a client with its own fhir_servers may name those and nothing else, even a
    server on the global allow-list (multi-tenant isolation); nothing is sent on refusal."""
    global_route = ehr.get(url__startswith="https://global.example/", name="global").mock(
        return_value=httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
    )
    client = app_client(allowed_fhir_servers="https://global.example/fhir")
    signed = token(getattr(keys, signer), kid=kid, iss=iss)
    response = _post(client, signed, _body(server))
    assert response.status_code == status, response.text
    assert global_route.call_count == 0


def test_jwt_sandbox_shape_es384_jku_verified_with_inline_key(keys: Keys, app_client, ehr) -> None:
    """Verify that a token shaped like the CDS Hooks sandbox's (ES384, typ JWT, kid, and its
    fixed jku) is verified against a client configured with the sandbox key inline, without
    fetching the jku."""
    sandbox_jku = "https://sandbox.cds-hooks.org/.well-known/jwks.json"
    fetched = ehr.get(sandbox_jku, name="sandbox-jwks").mock(return_value=httpx.Response(500))
    settings = _settings(keys)
    clients = json.loads(settings.trusted_clients)
    clients.append({"iss": "https://sandbox.cds-hooks.org", "jwks": keys.jwks_b})
    client = app_client(trusted_clients=json.dumps(clients), allowed_fhir_servers=FHIR_A)
    signed = token(
        keys.b, kid="b1", iss="https://sandbox.cds-hooks.org", headers={"jku": sandbox_jku}
    )
    assert _post(client, signed).status_code == 200
    assert fetched.call_count == 0


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{not json", 400), (b"x" * 6000, 413)],
    ids=["malformed-json", "oversized-body"],
)
def test_jwt_valid_token_bad_body(body: bytes, status: int, keys: Keys, app_client, ehr) -> None:
    """Verify that with a valid token a malformed body is 400 and an oversized one 413."""
    response = _post(app_client(max_body_bytes=4096), token(keys.a), body=body)
    assert response.status_code == status
    assert _fhir_requests(ehr) == 0


def test_jwt_next_link_to_other_host_not_followed(keys: Keys, app_client, ehr) -> None:
    """Verify that an authenticated call never follows a paging link to another host."""
    other = ehr.get(url__startswith="https://evil.example/", name="evil-host").mock(
        return_value=httpx.Response(200, json={"resourceType": "Bundle", "type": "searchset"})
    )
    ehr.routes["search-https://ehr-a.example/fhir"].mock(
        return_value=httpx.Response(
            200,
            json={
                "resourceType": "Bundle",
                "type": "searchset",
                "entry": [],
                "link": [{"relation": "next", "url": "https://evil.example/fhir/Condition?page=2"}],
            },
        )
    )
    response = _post(app_client(), token(keys.a))
    assert response.status_code == 200
    assert other.call_count == 0


def test_jwt_redirect_to_other_host_not_followed(keys: Keys, app_client, ehr) -> None:
    """Verify that a FHIR redirect to another host is not followed (and the token not sent)."""
    other = ehr.get(url__startswith="https://evil.example/", name="evil-redirect").mock(
        return_value=httpx.Response(200, json={"resourceType": "Patient", "id": "p1"})
    )
    ehr.routes["patient-https://ehr-a.example/fhir"].mock(
        return_value=httpx.Response(
            302, headers={"Location": "https://evil.example/fhir/Patient/p1"}
        )
    )
    response = _post(app_client(), token(keys.a))
    assert response.status_code == 412
    assert other.call_count == 0


@pytest.mark.parametrize("endpoint", ["explain", "feedback"])
def test_jwt_explain_and_feedback_require_token(endpoint: str, keys: Keys, app_client) -> None:
    """Verify that explain and feedback need a JWT, accepting their own URL as aud."""
    client = app_client()
    path = f"/cds-services/trd-ketamine-screen/{endpoint}"
    body: Any = (
        _body()
        if endpoint == "explain"
        else {
            "feedback": [
                {
                    "card": str(uuid.uuid4()),
                    "outcome": "overridden",
                    "outcomeTimestamp": "2026-11-27T10:00:00Z",
                }
            ]
        }
    )
    assert _post(client, None, body=body, path=path).status_code == 401
    assert (
        _post(client, token(keys.a, aud=f"{AUD}/{endpoint}"), body=body, path=path).status_code
        == 200
    )


def test_jwt_discovery_stays_public(keys: Keys, app_client) -> None:
    """Verify that discovery needs no JWT."""
    assert app_client().get("/cds-services").status_code == 200


def test_jwt_cors_preflight_needs_no_token(keys: Keys, app_client) -> None:
    """Verify that a browser preflight is answered without a JWT and allows Authorization."""
    client = app_client(cors_origins="https://sandbox.cds-hooks.org")
    response = client.options(
        "/cds-services/trd-ketamine-screen",
        headers={
            "Origin": "https://sandbox.cds-hooks.org",
            "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    assert response.status_code == 200
    assert response.headers["access-control-allow-origin"] == "https://sandbox.cds-hooks.org"
    assert "authorization" in response.headers["access-control-allow-headers"].lower()
    assert "access-control-allow-credentials" not in response.headers
    other = client.options(
        "/cds-services",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "GET"},
    )
    assert other.headers.get("access-control-allow-origin") != "https://evil.example"


def test_jwt_tokens_never_logged(keys: Keys, app_client, caplog) -> None:
    """Verify that neither the JWT nor the FHIR access token appears in any log record."""
    caplog.set_level(logging.DEBUG)
    bearer = token(keys.a, tenant="tenant-7")
    response = _post(app_client(), bearer)
    assert response.status_code == 200
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert bearer not in text and bearer.split(".")[2] not in text
    assert "secret-token-abc" not in text
    assert "tenant=tenant-7" in text


@pytest.mark.parametrize(
    ("overrides", "setting"),
    [
        ({"trusted_clients": "not json"}, "KETAMINE_CDS_TRUSTED_CLIENTS"),
        ({"trusted_clients": '[{"iss": "x"}]'}, "KETAMINE_CDS_TRUSTED_CLIENTS"),
        (
            {"trusted_clients": '[{"iss": "x", "jwks_url": "ftp://x"}]'},
            "KETAMINE_CDS_TRUSTED_CLIENTS",
        ),
        ({"public_base_url": None}, "KETAMINE_CDS_PUBLIC_BASE_URL"),
        ({"jwt_algorithms": "ES384,HS256"}, "KETAMINE_CDS_JWT_ALGORITHMS"),
        ({"jwt_algorithms": "none"}, "KETAMINE_CDS_JWT_ALGORITHMS"),
    ],
    ids=["not-json", "no-key-source", "bad-url", "no-base-url", "hmac", "none"],
)
def test_settings_invalid_trust_configuration_names_setting(
    overrides: dict[str, Any], setting: str, keys: Keys
) -> None:
    """Verify that the service refuses invalid trust configuration, naming the setting."""
    with pytest.raises(ValueError, match=setting):
        _settings(keys, **overrides)


# The official example token (CDS Hooks 2.0.1) and its key (tests/data/cds-hooks).
EXAMPLES = SUBSET_CDS_HOOKS / "hl7-cds-hooks" / "examples"


def _example() -> tuple[str, dict[str, Any], dict[str, Any]]:
    root = EXAMPLES
    compact = (root / "2.0.1_jwt-compact-SPEC-EXAMPLE.txt").read_text().strip()
    jwks = json.loads((root / "2.0.1_jwks-public.json").read_text())
    payload = json.loads((root / "2.0.1_jwt-payload.json").read_text())
    return compact, jwks, payload


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("at", "accepted"), [("now", False), ("iat", True)], ids=["today-expired", "at-its-iat"]
)
async def test_jwt_official_example_token_expired_today(at: str, accepted: bool) -> None:
    """Verify that the spec's example JWT verifies against its key but is expired today."""
    compact, jwks, payload = _example()
    settings = Settings(
        trusted_clients=json.dumps(
            [
                {
                    "iss": payload["iss"],
                    "jwks": jwks,
                    "jku_allowlist": ["https://fhir-ehr.example.com/jwk_uri"],
                }
            ]
        ),
        public_base_url="https://cds.example.org",
    )
    when = float(payload["iat"] + 10) if at == "iat" else NOW.timestamp()
    async with httpx.AsyncClient(
        transport=httpx.MockTransport(lambda r: httpx.Response(200, json=jwks))
    ) as http:
        verifier = Verifier(settings, http, lambda: when)
        if accepted:
            caller = await verifier.verify(f"Bearer {compact}", (payload["aud"],))
            assert caller.tenant == payload["tenant"]
        else:
            with pytest.raises(Exception, match="expired"):
                await verifier.verify(f"Bearer {compact}", (payload["aud"],))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _tamper(compact: str, claim: str, value: Any) -> str:
    header, body, signature = compact.split(".")
    claims = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
    claims[claim] = value
    return ".".join([header, _b64(claims), signature])


def test_jwt_round_trip_with_cli_keys_and_token(tmp_path: Path, ehr, capsys) -> None:
    """Verify the integration-engineer flow: CLI keys -> trusted client -> CLI token -> accepted;
    the same call with any single claim altered is rejected."""
    assert cli.main(["keys", "generate", "--out", str(tmp_path), "--kid", "rt-1"]) == 0
    jwks = json.loads((tmp_path / "jwks.json").read_text())
    settings = Settings(
        trusted_clients=json.dumps([{"iss": ISS_A, "jwks": jwks, "fhir_servers": [FHIR_A]}]),
        public_base_url=BASE,
    )
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        capsys.readouterr()
        base_args = [
            "token",
            "--iss",
            ISS_A,
            "--aud",
            AUD,
            "--key",
            str(tmp_path / "private-jwk.json"),
        ]
        assert cli.main(base_args) == 0
        minted = capsys.readouterr().out.strip()  # time is frozen at NOW for CLI and service
        assert _post(client, minted).status_code == 200
        private = json.loads((tmp_path / "private-jwk.json").read_text())
        for claim, value in [
            ("iss", "https://x.example"),
            ("aud", f"{BASE}/cds-services/x"),
            ("exp", T0 + 9999),
            ("iat", T0 - 5),
            ("jti", "other"),
            ("tenant", "t2"),
        ]:
            fresh = mint_token(private, iss=ISS_A, aud=AUD, now=NOW.timestamp())
            assert _post(client, _tamper(fresh, claim, value)).status_code == 401, claim


def test_keys_generate_private_key_is_private(tmp_path: Path) -> None:
    """Verify that the generated private key file is readable by its owner only."""
    assert cli.main(["keys", "generate", "--out", str(tmp_path)]) == 0
    assert (tmp_path / "private-jwk.json").stat().st_mode & 0o077 == 0
    private, public = generate_keys("k")
    assert "d" in private and all("d" not in k for k in public["keys"])

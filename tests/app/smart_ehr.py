"""A minimal SMART on FHIR EHR for the OAuth test: authorization server plus a guarded FHIR API.

- ``GET /fhir/.well-known/smart-configuration``: the endpoints, S256 PKCE, public clients;
- ``GET /auth/authorize``: checks client id, redirect URI, audience, the EHR launch id (or, for a
  standalone launch, the ``launch/patient`` scope: the test has picked the patient) and the S256
  code challenge, then redirects to the app with a one-time code (no login page: the test user is
  always signed in);
- ``POST /auth/token``: exchanges the code once, checking the redirect URI, the client id and the
  PKCE verifier (SHA-256 of it must equal the challenge); answers an access token and ``patient``;
- ``GET /fhir/...``: refuses requests without a token it issued (401), else proxies them to the
  real FHIR server (Medplum) and rewrites its base URL in the answer (paging links stay here).

``events`` records what happened (never token values), for the test's assertions.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from dataclasses import dataclass, field
from urllib.parse import parse_qs, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

CORS = {"Access-Control-Allow-Origin": "*", "Access-Control-Allow-Headers": "*"}


@dataclass
class Grant:
    patient: str
    client_id: str
    redirect_uri: str
    challenge: str
    scope: str


@dataclass
class SmartEhr:
    upstream: str
    """The real FHIR base URL the API proxies to."""
    client_id: str
    redirect_uri: str
    base_url: str = ""
    """Set once the server runs: ``http://127.0.0.1:PORT``."""
    launches: dict[str, str] = field(default_factory=dict)
    codes: dict[str, Grant] = field(default_factory=dict)
    tokens: dict[str, str] = field(default_factory=dict)
    events: list[str] = field(default_factory=list)
    standalone_patient: str | None = None
    """The patient the user picks at the authorization server in a standalone launch."""

    @property
    def fhir_base(self) -> str:
        return f"{self.base_url}/fhir"

    def launch(self, patient_id: str) -> str:
        """An EHR launch for ``patient_id``: the opaque ``launch`` value."""
        launch_id = secrets.token_urlsafe(12)
        self.launches[launch_id] = patient_id
        return launch_id

    def app(self) -> Starlette:
        return Starlette(
            routes=[
                Route("/fhir/.well-known/smart-configuration", self.configuration),
                Route("/auth/authorize", self.authorize),
                Route("/auth/token", self.token, methods=["POST", "OPTIONS"]),
                Route("/fhir/{path:path}", self.fhir),
            ]
        )

    async def configuration(self, request: Request) -> Response:
        self.events.append("smart-configuration")
        return JSONResponse(
            {
                "issuer": self.base_url,
                "authorization_endpoint": f"{self.base_url}/auth/authorize",
                "token_endpoint": f"{self.base_url}/auth/token",
                "grant_types_supported": ["authorization_code"],
                "response_types_supported": ["code"],
                "code_challenge_methods_supported": ["S256"],
                "token_endpoint_auth_methods_supported": ["none"],
                "scopes_supported": ["launch", "launch/patient", "openid", "fhirUser"],
                "capabilities": [
                    "launch-ehr",
                    "launch-standalone",
                    "client-public",
                    "context-ehr-patient",
                    "context-standalone-patient",
                    "permission-v2",
                ],
            },
            headers=CORS,
        )

    def _refuse(self, why: str) -> Response:
        self.events.append(f"refused: {why}")
        return PlainTextResponse(why, status_code=400)

    async def authorize(self, request: Request) -> Response:
        query = request.query_params
        if query.get("response_type") != "code":
            return self._refuse("response_type must be code")
        if query.get("client_id") != self.client_id:
            return self._refuse("unknown client_id")
        if query.get("redirect_uri") != self.redirect_uri:
            return self._refuse("redirect_uri is not the registered one")
        if query.get("aud") != self.fhir_base:
            return self._refuse("aud is not this FHIR server")
        if query.get("code_challenge_method") != "S256" or not query.get("code_challenge"):
            return self._refuse("PKCE S256 is required")
        scope = query.get("scope", "")
        if "launch" in query:
            patient = self.launches.pop(query["launch"], None)
            if patient is None:
                return self._refuse("unknown or reused launch")
            if "launch" not in scope.split():
                return self._refuse("an EHR launch must ask for the launch scope")
        else:
            # Standalone: the signed-in user would pick a patient here; the test picked it.
            if "launch/patient" not in scope.split() or self.standalone_patient is None:
                return self._refuse("a standalone launch must ask for launch/patient")
            patient = self.standalone_patient
        code = secrets.token_urlsafe(24)
        self.codes[code] = Grant(
            patient, self.client_id, self.redirect_uri, query["code_challenge"], scope
        )
        self.events.append("authorized")
        target = self.redirect_uri + "?" + urlencode({"code": code, "state": query["state"]})
        return RedirectResponse(target, status_code=302)

    async def token(self, request: Request) -> Response:
        if request.method == "OPTIONS":
            return Response(status_code=204, headers=CORS)
        parsed = parse_qs((await request.body()).decode("ascii", "replace"))
        form = {key: values[0] for key, values in parsed.items()}
        grant = self.codes.pop(str(form.get("code", "")), None)
        error = None
        if form.get("grant_type") != "authorization_code" or grant is None:
            error = "invalid_grant"
        elif form.get("redirect_uri") != grant.redirect_uri:
            error = "invalid_grant"
        elif form.get("client_id") != grant.client_id:
            error = "invalid_client"
        else:
            verifier = str(form.get("code_verifier", ""))
            digest = hashlib.sha256(verifier.encode("ascii")).digest()
            expected = base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
            if not 43 <= len(verifier) <= 128 or expected != grant.challenge:
                error = "invalid_grant"
        if error is not None or grant is None:
            self.events.append(f"token refused: {error}")
            return JSONResponse({"error": error}, status_code=400, headers=CORS)
        access_token = secrets.token_urlsafe(32)
        self.tokens[access_token] = grant.patient
        self.events.append("token issued (PKCE S256 verified)")
        return JSONResponse(
            {
                "access_token": access_token,
                "token_type": "Bearer",
                "expires_in": 3600,
                "scope": grant.scope,
                "patient": grant.patient,
            },
            headers={**CORS, "Cache-Control": "no-store"},
        )

    async def fhir(self, request: Request) -> Response:
        header = request.headers.get("authorization", "")
        token = header.removeprefix("Bearer ").strip()
        resource_type = request.path_params["path"].split("/", 1)[0]
        if token not in self.tokens:
            self.events.append(f"fhir {resource_type} refused (no valid token)")
            return JSONResponse(
                {
                    "resourceType": "OperationOutcome",
                    "issue": [{"severity": "error", "code": "login"}],
                },
                status_code=401,
                headers=CORS,
            )
        self.events.append(f"fhir {resource_type} with token")
        target = f"{self.upstream}/{request.path_params['path']}"
        if request.url.query:
            target += "?" + request.url.query
        async with httpx.AsyncClient(timeout=20) as client:
            upstream = await client.get(target, headers={"Accept": "application/fhir+json"})
        body = upstream.content.replace(self.upstream.encode(), self.fhir_base.encode())
        return Response(
            body,
            status_code=upstream.status_code,
            media_type="application/fhir+json",
            headers=CORS,
        )

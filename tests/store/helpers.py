"""Helpers of the store tests: a trusted CDS client with its own key (tokens signed as an EHR
signs them), apps on a given store, reading the store's tables back, and free ports."""

from __future__ import annotations

import asyncio
import json
import socket
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from fastapi.testclient import TestClient
from jwt.algorithms import ECAlgorithm
from sqlalchemy import MetaData, select
from sqlalchemy.ext.asyncio import create_async_engine

from service.main import create_app
from service.operations import Operations
from tests.conftest import EHR, make_settings
from tests.factories import NOW

ISS = "https://ehr.store-test.example"
BASE = "https://cds.store-test.example"
KID = "store-1"
CLOSED_PORT_URL = "postgresql+asyncpg://postgres@127.0.0.1:9/nothing"
"""A store that cannot be reached: nothing listens on the discard port on this machine."""


class EhrClient:
    """A trusted CDS client (an EHR) with an ES384 key."""

    def __init__(self) -> None:
        self.key = ec.generate_private_key(ec.SECP384R1())
        public = json.loads(ECAlgorithm.to_jwk(self.key.public_key()))
        public.update({"kid": KID, "alg": "ES384", "use": "sig"})
        self.jwks = {"keys": [public]}

    def trusted_clients(self) -> str:
        return json.dumps([{"iss": ISS, "jwks": self.jwks}])

    def environment(self) -> dict[str, str]:
        """The settings a service needs to trust this client (for subprocesses)."""
        return {
            "KETAMINE_CDS_TRUSTED_CLIENTS": self.trusted_clients(),
            "KETAMINE_CDS_PUBLIC_BASE_URL": BASE,
        }

    def token(
        self,
        service_id: str,
        *,
        now: float | None = None,
        endpoint: str = "",
        jti: str | None = None,
        tenant: str | None = None,
    ) -> str:
        issued = int(NOW.timestamp() if now is None else now)
        claims: dict[str, Any] = {
            "iss": ISS,
            "aud": f"{BASE}/cds-services/{service_id}{endpoint}",
            "iat": issued,
            "exp": issued + 300,
            "jti": jti or str(uuid.uuid4()),
        }
        if tenant is not None:
            claims["tenant"] = tenant
        return jwt.encode(claims, self.key, algorithm="ES384", headers={"kid": KID, "typ": "JWT"})


def jwt_settings(client: EhrClient, database_url: str, **overrides: Any) -> Any:
    values: dict[str, Any] = {
        "allow_unauthenticated": False,
        "trusted_clients": client.trusted_clients(),
        "public_base_url": BASE,
        "allowed_fhir_servers": EHR,
        "database_url": database_url,
    }
    values.update(overrides)
    return make_settings(**values)


@contextmanager
def app_on(database_url: str, settings: Any = None, **overrides: Any) -> Iterator[TestClient]:
    """A dev-mode app (or one with the given settings) on the given store, started."""
    settings = settings or make_settings(database_url=database_url, **overrides)
    with TestClient(create_app(settings, clock=lambda: NOW)) as client:
        yield client


def operations_of(client: TestClient) -> Operations:
    operations: Operations | None = client.app.state.cds.operations  # type: ignore[attr-defined]
    assert operations is not None
    return operations


def flush_card_log(client: TestClient) -> None:
    """Wait until the app's card log writer has written (or given up on) what it was given."""
    client.portal.call(operations_of(client).card_log.flush)  # type: ignore[union-attr]


def break_store(client: TestClient) -> None:
    """A store outage from now on: the app's store points at a server that is not there."""
    from service.store.engine import make_engine

    operations = operations_of(client)
    working = operations.store.engine
    operations.store.engine = make_engine(CLOSED_PORT_URL)
    operations.store.timeout = 2.0
    client.portal.call(working.dispose)  # type: ignore[union-attr]


async def _rows(url: str) -> dict[str, list[dict[str, Any]]]:
    engine = create_async_engine(url)
    try:
        async with engine.connect() as connection:
            metadata = MetaData()
            await connection.run_sync(metadata.reflect)
            tables = {}
            for name, table in metadata.tables.items():
                result = await connection.execute(select(table))
                tables[name] = [dict(row._mapping) for row in result]
            return tables
    finally:
        await engine.dispose()


def table_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every row of every table of the store, by table name (read with a connection of its
    own, as an auditor would)."""
    return asyncio.run(_rows(url))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])

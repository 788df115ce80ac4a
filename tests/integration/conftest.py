"""Real FHIR R4 servers for the integration tests, started and stopped by the tests themselves.

The server is Medplum's in-memory FHIR server (``integration/medplum``, installed by
``scripts/test``). Without Node.js these tests fail, never skip: the message says what to install.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from datetime import UTC

import pytest

from ehr.fhir_http import fhir_client
from ehr.scenarios import scenario_index
from ehr.seeding import SeedResult, seed
from integration.fhir_server import FhirServerError, FhirTestServer, medplum_server
from tests.factories import NOW
from tests.integration.real_data import RealData
from tests.shared_data import CORPUS_FHIR_R4, SUBSET_FHIR_R4, corpus_subdir

SCENARIO_PAGE_SIZE = 10
"""Small pages, so that the scenario patients with monthly renewals page (HAPI's default is 20)."""
TODAY = NOW.astimezone(UTC).date()


@contextlib.contextmanager
def started(page_size: int) -> Iterator[FhirTestServer]:
    """A server for one session; a missing Node.js or package fails the test, with what to do."""
    try:
        with medplum_server(page_size=page_size) as server:
            yield server
    except FhirServerError as exc:
        pytest.fail(f"cannot start the FHIR test server: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def fhir_server() -> Iterator[FhirTestServer]:
    """A Medplum server holding the 50 scenario patients (see ``seeded``)."""
    with started(SCENARIO_PAGE_SIZE) as server:
        yield server


async def _seed(base_url: str) -> list[SeedResult]:
    async with fhir_client(None) as fhir:
        return await seed(fhir, base_url, scenario_index(), today=TODAY)


@pytest.fixture(scope="session")
def seeded(fhir_server: FhirTestServer) -> list[SeedResult]:
    """The scenario patients, loaded the way ``ketamine-cds seed`` loads them."""
    return asyncio.run(_seed(fhir_server.base_url))


@pytest.fixture(scope="module")
def subset_data() -> Iterator[RealData]:
    """The curated third-party data of tests/data, one server per group, loaded on first use."""
    with contextlib.ExitStack() as stack:
        yield RealData(stack, lambda: SUBSET_FHIR_R4, started)


@pytest.fixture(scope="module")
def corpus_data() -> Iterator[RealData]:
    """The whole shared corpus (corpus tests only), one server per group, loaded on first use."""
    with contextlib.ExitStack() as stack:
        yield RealData(stack, lambda: corpus_subdir(*CORPUS_FHIR_R4), started)

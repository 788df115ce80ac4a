"""Guards for the performance work: the fast paths decide exactly what the slow ones did.

- the date windows of ``KnowledgeRelevance`` (Observations older than every rule reads are not
  validated) change no assessment, for every clinical scenario and the benchmark charts;
- the raw-JSON code filters normalise codes like ``fhir_mappers.codes.concept``;
- remembered validation verdicts are the verdicts, logged the same way;
- the PHQ-9 timeline lookup equals the linear scan it replaced;
- the benchmark's charts are deterministic and of the advertised sizes; its stand-in FHIR
  server pages and filters; its recommended start-up wrapper runs once.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest

from benchmarks.charts import ANCHOR, HEAVY, TINY, TYPICAL, generate_chart
from benchmarks.hook_bodies import hook_request_for
from fhir_mappers import parse
from fhir_mappers.codes import coding_pairs, concept
from fhir_mappers.collect import AcceptAll, map_resources
from fhir_mappers.facts import ObservationFact
from hooks.relevance import KnowledgeRelevance
from hooks.rules.assessment import assess
from hooks.rules.knowledge import Knowledge
from hooks.rules.trials import _Timeline
from tests.factories import NOW, blood_pressure, observation, phq9
from tests.scenarios import SCENARIOS


def _assessment(
    resources: list[dict[str, Any]], relevance: Any, knowledge: Knowledge, now: datetime
) -> dict[str, Any]:
    facts = map_resources(resources, relevance, patient_id=None)
    return assess(facts, now=now, knowledge=knowledge).as_json()


@pytest.mark.parametrize("scenario", SCENARIOS, ids=[s.id for s in SCENARIOS])
def test_relevance_date_windows_change_no_scenario_assessment(
    scenario: Any, knowledge: Knowledge
) -> None:
    """Verify that dropping Observations older than the rules' windows changes no assessment."""
    resources = scenario.build()
    without = _assessment(resources, KnowledgeRelevance(knowledge), knowledge, NOW)
    windowed = _assessment(resources, KnowledgeRelevance(knowledge, now=NOW), knowledge, NOW)
    assert windowed == without


@pytest.mark.parametrize("spec", [TINY, TYPICAL, HEAVY], ids=lambda s: s.name)
def test_relevance_date_windows_change_no_chart_assessment(spec: Any, knowledge: Knowledge) -> None:
    """Verify the same on the benchmark charts, and against validating everything."""
    resources = generate_chart(spec)
    everything = _assessment(resources, AcceptAll(), knowledge, ANCHOR)
    windowed = _assessment(resources, KnowledgeRelevance(knowledge, now=ANCHOR), knowledge, ANCHOR)
    assert windowed == everything
    assert windowed["recommendation"] == "refer-for-evaluation"
    assert windowed["failed_adequate_trials"] >= 2


def test_relevance_windows_drop_only_old_windowed_observations(knowledge: Knowledge) -> None:
    """Verify that old BP panels are dropped, while recent BPs, old PHQ-9 totals, undated and
    unparseable-date Observations are kept (validation then judges them)."""
    relevance = KnowledgeRelevance(knowledge, now=NOW)
    old_bp = blood_pressure(120, 80, days_ago=200)
    recent_bp = blood_pressure(120, 80, days_ago=80)
    old_phq9 = phq9(18, weeks_ago=300)
    undated = blood_pressure(120, 80, days_ago=200)
    del undated["effectiveDateTime"]
    bad_date = blood_pressure(120, 80, days_ago=200)
    bad_date["effectiveDateTime"] = "yesterday"
    lab = observation("2345-7", "Glucose", 100, weeks_ago=1, unit="mg/dL")
    assert not relevance.observation_resource(old_bp)
    assert relevance.observation_resource(recent_bp)
    assert relevance.observation_resource(old_phq9)
    assert relevance.observation_resource(undated)
    assert relevance.observation_resource(bad_date)
    assert not relevance.observation_resource(lab)
    assert KnowledgeRelevance(knowledge).observation_resource(old_bp)  # no clock, no window
    assert AcceptAll().observation_resource(lab)


@pytest.mark.parametrize(
    "value",
    [
        {"coding": [{"system": "http://loinc.org", "code": "8480-6"}]},
        {"coding": [{"system": "http://loinc.org", "code": 8480}]},
        {"coding": [{"system": "http://loinc.org", "code": True}]},
        {"coding": [{"code": "8480-6"}, "junk", None, {"system": "", "code": ""}]},
        {"coding": [{"system": ["http://loinc.org"], "code": {"x": 1}}]},
        {"coding": "not a list", "text": "Systolic"},
        "not a concept",
        None,
    ],
)
def test_coding_pairs_normalise_like_concept(value: Any) -> None:
    """Verify that the raw filter sees the same (system, code) pairs as ``concept``."""
    assert coding_pairs(value) == [(c.system, c.code) for c in concept(value).codings]


def test_observation_filter_tolerates_junk_codings(knowledge: Knowledge) -> None:
    """Verify that unhashable or odd codes never raise in the cheap filter."""
    relevance = KnowledgeRelevance(knowledge, now=NOW)
    resource = blood_pressure(120, 80, days_ago=1)
    resource["code"] = {"coding": [{"system": ["x"], "code": {"y": 1}}, 5, {"code": 85354}]}
    resource["component"] = [{"code": "junk"}, "junk"]
    assert relevance.observation_resource(resource) is False


def test_validation_verdicts_are_remembered_and_logged_each_time(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Verify that a remembered verdict equals a fresh one, malformed ones are still logged,
    and any change to the resource is a new verdict."""
    parse.clear_validation_cache()
    good = blood_pressure(120, 80, days_ago=1)
    bad = phq9(12, weeks_ago=1)
    bad["status"] = "bogus"
    assert parse.is_valid(good) and parse.is_valid(good)
    with caplog.at_level(logging.WARNING, logger="fhir_mappers.parse"):
        assert not parse.is_valid(bad)
        assert not parse.is_valid(bad)
    assert len([r for r in caplog.records if "malformed in status" in r.getMessage()]) == 2
    info = parse.validation_cache_info()
    assert info["hits"] == 2 and info["misses"] == 2 and info["size"] == 2
    changed = dict(good, status="final ")
    assert not parse.is_valid(changed)
    parse.clear_validation_cache()
    assert parse.validation_cache_info() == {"size": 0, "hits": 0, "misses": 0}


def test_validation_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that the verdict cache never holds more than its size."""
    cache = parse._VerdictCache(3)
    for n in range(10):
        cache.put(bytes([n]), "valid")
    assert len(cache) == 3
    assert cache.get(bytes([0])) is None and cache.get(bytes([9])) == "valid"


def test_timeline_lookup_equals_the_linear_scan() -> None:
    """Verify ``_Timeline.last_between`` against the scan it replaced (ties included)."""
    rng = random.Random(7)
    base = datetime(2026, 1, 1, tzinfo=UTC)
    observations = [
        ObservationFact(
            ref=f"Observation/{n}",
            concept=concept(None),
            status="final",
            effective=base + timedelta(days=rng.randint(0, 60)),
            value=float(n),
            unit=None,
            value_concept=concept(None),
        )
        for n in range(80)
    ]
    ordered = sorted(observations, key=lambda o: o.effective or base)
    timeline = _Timeline(observations)
    for _ in range(300):
        low = base + timedelta(days=rng.randint(-5, 65))
        high = low + timedelta(days=rng.randint(0, 20))
        expected = None
        for obs in ordered:
            if obs.effective and low <= obs.effective <= high:
                expected = obs
        assert timeline.last_between(low, high) is expected


def test_charts_are_deterministic_and_sized() -> None:
    """Verify that a chart depends only on its spec and seed, and heavy has the stated sizes."""
    assert generate_chart(TYPICAL, 3) == generate_chart(TYPICAL, 3)
    assert generate_chart(TYPICAL, 3) != generate_chart(TYPICAL, 4)
    counts = Counter(r["resourceType"] for r in generate_chart(HEAVY))
    assert counts["Observation"] == 5000
    assert counts["MedicationRequest"] + counts["MedicationStatement"] == 400
    assert counts["Condition"] == 200
    assert 250 <= len(generate_chart(TYPICAL)) <= 350


def test_standin_fhir_server_filters_pages_and_includes() -> None:
    """Verify the stand-in's search: patient and code filters, paging, _include."""
    from ehr.memory_fhir import MemoryFhirServer

    resources = generate_chart(TINY)
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    server = MemoryFhirServer(resources, base="http://127.0.0.1:1/fhir", page_size=2)
    status, bundle = server.handle(
        "/fhir/Observation", f"patient={pid}&code=http://loinc.org|85354-9"
    )
    assert status == 200 and bundle["total"] > 2 and len(bundle["entry"]) == 2
    assert all(e["resource"]["code"]["coding"][0]["code"] == "85354-9" for e in bundle["entry"])
    next_url = next(link["url"] for link in bundle["link"] if link["relation"] == "next")
    status, page2 = server.handle("/fhir/Observation", next_url.split("?", 1)[1])
    assert status == 200 and page2["entry"][0] != bundle["entry"][0]
    status, meds = server.handle(
        "/fhir/MedicationRequest",
        f"patient={pid}&_include=MedicationRequest:medication&_count=1000",
    )
    modes = Counter(e["search"]["mode"] for e in meds["entry"])
    assert modes["include"] >= 1
    assert server.handle(f"/fhir/Patient/{pid}", "")[0] == 200
    assert server.handle("/fhir/Patient/nobody", "")[0] == 404


def test_standin_fhir_asgi_serves_the_memory_server_with_latency() -> None:
    """Verify that the stand-in serves health, reads and searches over ASGI after its delay."""
    from benchmarks.standin_fhir import StandInFhir
    from ehr.memory_fhir import MemoryFhirServer

    resources = generate_chart(TINY)
    pid = next(r["id"] for r in resources if r["resourceType"] == "Patient")
    app = StandInFhir(MemoryFhirServer(resources, base="http://standin/fhir"), latency=0.01)

    async def calls() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://standin") as client:
            return [
                await client.get("/healthz"),
                await client.get(f"/fhir/Patient/{pid}"),
                await client.get("/fhir/Condition", params={"patient": pid}),
            ]

    started = time.perf_counter()
    health, read, search = asyncio.run(calls())
    assert time.perf_counter() - started >= 0.03
    assert [health.status_code, read.status_code, search.status_code] == [200, 200, 200]
    assert read.headers["content-type"] == "application/fhir+json"
    assert search.json()["total"] == sum(r["resourceType"] == "Condition" for r in resources)


def test_hook_request_bodies_carry_the_replaceable_patient_id() -> None:
    """Verify that every resource of a request names the fixed-width patient id the load
    generators replace to make never-seen charts."""
    body = hook_request_for("trd-ketamine-screen", generate_chart(TINY))
    assert body["context"]["patientId"] == "pt-0000000000"
    for key, bundle in body["prefetch"].items():
        if key == "patient" or bundle is None:
            continue
        for entry in bundle["entry"]:
            resource = entry["resource"]
            if resource["resourceType"] != "Medication":
                ref = (resource.get("subject") or resource.get("patient"))["reference"]
                assert ref == "Patient/pt-0000000000"


def test_benchmark_tokens_are_accepted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    """Verify that the benchmark's signed tokens pass the service's JWT check, each once: a
    replayed token is refused, so every benchmark call really goes through the replay store."""
    from benchmarks.app import BenchJwt, create_bench_app, running

    signer = BenchJwt.from_pem(BenchJwt().pem())  # through the PEM, as other processes get it
    for name, value in signer.env().items():
        monkeypatch.setenv(name, value)
    body = orjson.dumps(hook_request_for("trd-ketamine-screen", generate_chart(TINY)))
    path = "/cds-services/trd-ketamine-screen"

    async def calls() -> list[int]:
        async with running(create_bench_app()) as call:
            token = signer.token("trd-ketamine-screen")
            statuses = [(await call(path, body, token))[0], (await call(path, body, token))[0]]
            statuses.append((await call(path, body, signer.token("trd-ketamine-screen")))[0])
            statuses.append((await call(path, body))[0])
            return statuses

    assert asyncio.run(calls()) == [200, 401, 200, 401]

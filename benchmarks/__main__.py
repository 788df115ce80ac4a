"""``python -m benchmarks``: measure the hook path and regenerate docs/performance.md.

Stages (each can be skipped with ``--skip``):

- ``inprocess``: server-side latency (p50/p95/p99) of the three hooks on the typical and heavy
  charts, straight into the ASGI app; cold (validation verdicts forgotten before every call: a
  chart never seen before) and warm (the same chart again); the orjson decode floor;
- ``sweep``: the same for a range of chart sizes (the scaling curve and the plot);
- ``http``: uvicorn with one then two workers, driven over loopback by wrk (or
  ``benchmarks.loadgen``) from another process: latency, throughput, errors; RSS per worker
  over 10,000 calls;
- ``fhir``: no prefetch, against the Medplum server of ``integration/`` (or a stand-in): the
  hook's wall time next to the slowest FHIR request it made;
- ``store``: the typical chart on each store (a fresh SQLite file; a fresh PostgreSQL database
  when a server is reachable, see ``benchmarks.stores``) with a new signed JWT on every call
  (the replay check writes to the store): server-side latency, then throughput with one and two
  workers over HTTP.

Every stage runs the app as ``ketamine-cds serve`` builds it, on a store of its own (a fresh
SQLite file unless ``--database-url``) with a suppression secret: each call writes the card log
and looks up earlier feedback.

``--profile quick`` takes a few minutes, ``--smoke`` a few seconds (tests/benchmarks). Results go
to ``--out`` (default ``docs/``): performance.md, performance.png, performance.json.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import json
import os
import resource
import secrets
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from benchmarks import fhir, http, report
from benchmarks.app import ENV, MAX_BODY_BYTES, BenchJwt, bench_settings
from benchmarks.charts import (
    HEAVY,
    TINY,
    TYPICAL,
    TYPICAL_FILTERED,
    ChartSpec,
    generate_chart,
    scaled,
    sweep_specs,
)
from benchmarks.hook_bodies import HOOK_OF, request_body
from benchmarks.machine import busy_cpu_seconds, describe, load_average
from benchmarks.stores import describe_store, postgres_target, sqlite_target

REPO = Path(__file__).resolve().parents[1]
ALL_HOOKS = tuple(HOOK_OF)
SCREEN = "trd-ketamine-screen"


@dataclass(frozen=True)
class Profile:
    name: str
    sizes: tuple[ChartSpec, ...]
    iterations: dict[str, int]
    time_limit: float
    sweep: tuple[ChartSpec, ...]
    sweep_iterations: int
    sweep_time_limit: float
    http_sizes: tuple[ChartSpec, ...]
    http_hooks: tuple[str, ...]
    http_duration: float
    rss_calls: int
    fhir_runs: tuple[tuple[ChartSpec, int, int], ...]
    """(chart, server page size, iterations)."""
    store_iterations: int = 300
    """In-process calls per hook on each store (the store stage)."""
    extra_http: bool = True
    """Also uvicorn's own socket (not in smoke)."""


PROFILES = {
    "full": Profile(
        name="full",
        sizes=(TYPICAL, TYPICAL_FILTERED, HEAVY),
        iterations={"typical": 1000, "typical-filtered": 1000, "heavy": 200},
        time_limit=30,
        sweep=tuple(sweep_specs()),
        sweep_iterations=40,
        sweep_time_limit=6,
        http_sizes=(TYPICAL, HEAVY, TYPICAL_FILTERED),
        http_hooks=ALL_HOOKS,
        http_duration=6,
        rss_calls=10_000,
        fhir_runs=((TYPICAL, 20, 20), (TYPICAL, 1000, 20), (HEAVY, 1000, 5)),
        store_iterations=1000,
    ),
    "quick": Profile(
        name="quick",
        sizes=(TYPICAL, TYPICAL_FILTERED, HEAVY),
        iterations={"typical": 300, "typical-filtered": 300, "heavy": 40},
        time_limit=10,
        sweep=tuple(sweep_specs((0.05, 0.25, 0.5, 1.0))),
        sweep_iterations=15,
        sweep_time_limit=3,
        http_sizes=(TYPICAL,),
        http_hooks=(SCREEN,),
        http_duration=4,
        rss_calls=2_000,
        fhir_runs=((TYPICAL, 20, 5), (TYPICAL, 1000, 5)),
    ),
    "smoke": Profile(
        name="smoke",
        sizes=(TINY,),
        iterations={"tiny": 10},
        time_limit=2,
        sweep=(scaled(0.01), scaled(0.02)),
        sweep_iterations=4,
        sweep_time_limit=1,
        http_sizes=(TINY,),
        http_hooks=(SCREEN,),
        http_duration=0.5,
        rss_calls=100,
        fhir_runs=((TINY, 20, 2),),
        store_iterations=10,
        extra_http=False,
    ),
}

STAGES = ("inprocess", "sweep", "http", "fhir", "store")


def _log(message: str) -> None:
    sys.stderr.write(f"[bench {time.strftime('%H:%M:%S')}] {message}\n")
    sys.stderr.flush()


def _inprocess(
    specs: list[ChartSpec],
    iterations: int,
    time_limit: float,
    seed: int,
    log_path: Path,
    *,
    services: tuple[str, ...] = ALL_HOOKS,
    jwt_key: Path | None = None,
    env: dict[str, str] | None = None,
) -> list[dict[str, Any]]:
    command = [
        sys.executable,
        "-m",
        "benchmarks.inprocess",
        *[json.dumps(dataclasses.asdict(s)) for s in specs],
        "--services",
        ",".join(services),
        "--iterations",
        str(iterations),
        "--time-limit",
        str(time_limit),
        "--seed",
        str(seed),
        "--warmup",
        str(min(20, max(2, iterations // 10))),
        *(["--jwt-key", str(jwt_key)] if jwt_key else []),
    ]
    with log_path.open("ab") as log:
        done = subprocess.run(  # noqa: S603 (our own module)
            command,
            cwd=REPO,
            env={**os.environ, **(env or {}), "PYTHONPATH": str(REPO)},
            stdout=subprocess.PIPE,
            stderr=log,
            check=False,
            timeout=len(specs) * len(services) * (2 * time_limit + 120) + 120,
        )
    if done.returncode != 0:
        raise RuntimeError(f"in-process benchmark failed; see {log_path}")
    return [json.loads(line) for line in done.stdout.decode().splitlines() if line.strip()]


def _show(runs: list[dict[str, Any]], label: str) -> None:
    for run in runs:
        for sid, v in run["services"].items():
            cold, warm = v["latency_ms"], v["warm_latency_ms"]
            _log(
                f"  {label}{run['spec']} {HOOK_OF[sid]}: cold p50 {cold['p50']:.1f} p99 "
                f"{cold['p99']:.1f} ms, warm p50 {warm['p50']:.1f} p99 {warm['p99']:.1f} ms, "
                f"decode {v['decode_pure_ms']['p50']:.1f} ms"
            )


def stage_inprocess(profile: Profile, seed: int, work: Path) -> list[dict[str, Any]]:
    out = []
    for spec in profile.sizes:
        _log(f"server-side, in process: {spec.name}")
        runs = _inprocess(
            [spec],
            profile.iterations.get(spec.name, 100),
            profile.time_limit,
            seed,
            work / "inprocess.log",
        )
        _show(runs, "")
        out += runs
    return out


def stage_sweep(profile: Profile, seed: int, work: Path) -> list[dict[str, Any]]:
    _log(f"scaling sweep: {', '.join(s.name for s in profile.sweep)}")
    runs = _inprocess(
        list(profile.sweep),
        profile.sweep_iterations,
        profile.sweep_time_limit,
        seed,
        work / "sweep.log",
    )
    _show(runs, "")
    return runs


def _bodies(profile: Profile, seed: int, work: Path) -> dict[tuple[str, str], Path]:
    bodies: dict[tuple[str, str], Path] = {}
    for spec in profile.http_sizes:
        resources = generate_chart(spec, seed)
        # The code-filtered variant only for patient-view (it is a what-if, not a size).
        hooks = (SCREEN,) if spec.code_filtered_prefetch else profile.http_hooks
        for sid in hooks:
            path = work / f"{spec.name}-{sid}.json"
            path.write_bytes(orjson.dumps(request_body(spec, resources, sid)))
            bodies[(spec.name, sid)] = path
        del resources
    gc.collect()
    return bodies


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _measured(server: http.Server, run: Any) -> dict[str, Any]:
    """Run one load, recording the CPU each worker and the load generator used during it, and
    what the rest of the machine used (other work skews the figures)."""
    before, busy_before, gen_before = server.cpu_seconds(), busy_cpu_seconds(), _children_cpu()
    result: dict[str, Any] = run()
    after, busy_after, gen_after = server.cpu_seconds(), busy_cpu_seconds(), _children_cpu()
    if len(before) == len(after):
        workers = [a - b for a, b in zip(after, before, strict=True)]
        result["worker_cpu_seconds"] = [round(w, 2) for w in workers]
        result["loadgen_cpu_seconds"] = round(gen_after - gen_before, 2)
        if busy_before is not None and busy_after is not None:
            result["other_cpu_seconds"] = round(
                max(0.0, busy_after - busy_before - sum(workers) - (gen_after - gen_before)), 2
            )
    return result


def _hook_runs(
    server: http.Server,
    sid: str,
    body_file: Path,
    workers: int,
    duration: float,
    signer: tuple[BenchJwt, Path] | None = None,
) -> dict[str, Any]:
    """Latency (one connection), then throughput (four per worker) of never-seen charts and of
    the same chart. ``signer``: a new signed token on every call (the key and its PEM file)."""
    url = f"{server.url}/cds-services/{sid}"
    key = signer[1] if signer else None
    http.warm(url, body_file.read_bytes(), 3, signer[0] if signer else None)
    connections = 4 * workers
    # Warm every worker (imports, first-call work) before measuring.
    http.load(
        url,
        body_file,
        connections=connections,
        duration=max(0.5, duration / 4),
        unique=True,
        prefer_wrk=False,
        jwt_key=key,
    )
    return {
        "latency": _measured(
            server,
            lambda: http.load(
                url, body_file, connections=1, duration=duration, unique=True, jwt_key=key
            ),
        ),
        "throughput": _measured(
            server,
            lambda: http.load(
                url,
                body_file,
                connections=connections,
                duration=duration,
                unique=True,
                jwt_key=key,
            ),
        ),
        "throughput_repeat": _measured(
            server,
            lambda: http.load(
                url,
                body_file,
                connections=connections,
                duration=duration,
                unique=False,
                jwt_key=key,
            ),
        ),
    }


def _show_http(size: str, sid: str, runs: dict[str, Any], label: str = "") -> None:
    errors = sum(r["errors"] for r in runs.values())
    _log(
        f"  {label}{size} {HOOK_OF[sid]}: latency p50 {runs['latency']['latency_ms']['p50']:.1f} "
        f"ms, {runs['throughput']['rps']:.0f} calls/s never-seen charts, "
        f"{runs['throughput_repeat']['rps']:.0f} calls/s same chart, {errors} errors"
    )


def stage_http(profile: Profile, seed: int, work: Path, results: dict[str, Any]) -> None:
    bodies = _bodies(profile, seed, work)
    duration = profile.http_duration
    size = profile.http_sizes[0].name
    _log(f"RSS of a fresh worker over {profile.rss_calls} {size} patient-view calls")
    with http.uvicorn_server(1, work / "uvicorn-rss.log", ENV) as server:
        http.warm(f"{server.url}/cds-services/{SCREEN}", bodies[(size, SCREEN)].read_bytes(), 1)
        results["rss_fresh"] = http.rss_growth(
            server,
            f"{server.url}/cds-services/{SCREEN}",
            bodies[(size, SCREEN)],
            profile.rss_calls,
        )
        results["rss_fresh"]["chart"] = size
        _log(f"  RSS MB: {results['rss_fresh']['points']}")
    http_results: dict[str, Any] = {}
    for workers in (1, 2):
        _log(f"HTTP: uvicorn with {workers} worker(s)")
        by_size: dict[str, Any] = {}
        with http.uvicorn_server(workers, work / f"uvicorn-{workers}.log", ENV) as server:
            for (size, sid), body_file in bodies.items():
                runs = _hook_runs(server, sid, body_file, workers, duration)
                by_size.setdefault(size, {})[sid] = runs
                _show_http(size, sid, runs)
            if workers == 1:
                _log(f"RSS after those runs, over {profile.rss_calls} more calls")
                results["rss"] = http.rss_growth(
                    server,
                    f"{server.url}/cds-services/{SCREEN}",
                    bodies[(size, SCREEN)],
                    profile.rss_calls,
                )
                results["rss"]["chart"] = size
                _log(f"  RSS MB: {results['rss']['points']}")
            else:
                results["rss_two_workers"] = server.rss()
        http_results[str(workers)] = by_size
    results["http"] = http_results
    if not profile.extra_http:
        return
    modes: dict[str, Any] = {}
    for mode in ("shared", "uvicorn"):
        _log(f"HTTP: 2 workers, {mode} socket")
        log = work / f"uvicorn-{mode}.log"
        with http.uvicorn_server(2, log, ENV, mode=mode) as server:
            runs = _hook_runs(server, SCREEN, bodies[(size, SCREEN)], 2, duration)
            _show_http(size, SCREEN, runs, f"{mode} socket ")
            modes[mode] = {"2": {size: {SCREEN: runs}}}
    results["http_modes"] = modes


def stage_store(
    profile: Profile, seed: int, work: Path, results: dict[str, Any], *, postgres: bool
) -> None:
    """The typical chart's patient-view on each store, a new signed JWT on every call: server-side
    latency (in process), then latency and throughput over HTTP with one and two workers."""
    signer = BenchJwt()
    key = work / "jwt-key.pem"
    key.write_bytes(signer.pem())
    spec = profile.http_sizes[0]
    body_file = _bodies(
        dataclasses.replace(profile, http_sizes=(spec,), http_hooks=(SCREEN,)), seed, work
    )[(spec.name, SCREEN)]
    out: dict[str, Any] = {"chart": spec.name, "stores": []}
    with contextlib.ExitStack() as stack:
        targets = [sqlite_target(work, "store-stage")]
        if postgres:
            found = stack.enter_context(postgres_target())
            if isinstance(found, str):
                out["postgres_skipped"] = found
                _log(f"store: {found}; PostgreSQL figures skipped")
            else:
                targets.append(found)
        for target in targets:
            env = {**signer.env(), "KETAMINE_CDS_DATABASE_URL": target.url}
            _log(f"store {target.name}: server-side, a new JWT every call: {spec.name}")
            runs = _inprocess(
                [spec],
                profile.store_iterations,
                profile.time_limit,
                seed,
                work / "store.log",
                services=(SCREEN,),
                jwt_key=key,
                env=env,
            )
            _show(runs, f"{target.name} ")
            _log(f"store {target.name}: server-side, development mode (no JWT): {spec.name}")
            plain = _inprocess(
                [spec],
                profile.store_iterations,
                profile.time_limit,
                seed,
                work / "store.log",
                services=(SCREEN,),
                env={"KETAMINE_CDS_DATABASE_URL": target.url},
            )
            _show(plain, f"{target.name} no JWT ")
            over_http: dict[str, Any] = {}
            for workers in (1, 2):
                _log(f"store {target.name}: HTTP, {workers} worker(s), a new JWT every call")
                log = work / f"store-{target.name}-{workers}.log"
                with http.uvicorn_server(workers, log, {**ENV, **env}) as server:
                    runs_http = _hook_runs(
                        server, SCREEN, body_file, workers, profile.http_duration, (signer, key)
                    )
                    _show_http(spec.name, SCREEN, runs_http, f"{target.name} ")
                over_http[str(workers)] = runs_http
            out["stores"].append(
                {
                    "store": target.name,
                    "inprocess": runs[0],
                    "inprocess_no_jwt": plain[0],
                    "http": over_http,
                }
            )
    results["store"] = out


def stage_fhir(
    profile: Profile, seed: int, work: Path, choice: str, results: dict[str, Any]
) -> None:
    medplum = fhir.medplum_module() if choice in ("auto", "medplum") else None
    if choice == "medplum" and medplum is None:
        raise SystemExit("integration/fhir_server.py is not available")
    runs: list[dict[str, Any]] = []
    note = None
    for spec, page_size, iterations in profile.fhir_runs:
        _log(f"no prefetch against the FHIR server: {spec.name}, page size {page_size}")
        with contextlib.ExitStack() as stack:
            base_url = None
            server = ""
            if medplum is not None:
                try:
                    base_url = stack.enter_context(
                        fhir.medplum_server(medplum, spec, seed, page_size)
                    )
                    server = f"Medplum in-memory (integration/medplum, Node {fhir.node_version()})"
                except medplum.FhirServerError as exc:
                    if choice == "medplum":
                        raise
                    note = f"the Medplum server could not start ({str(exc)[:200]})"
                    medplum = None
            if base_url is None:
                base_url = stack.enter_context(
                    fhir.standin_server(
                        spec, seed, fhir.STANDIN_LATENCY_MS, page_size, work / "standin.log"
                    )
                )
                server = (
                    "stand-in (benchmarks/standin_fhir.py, "
                    f"{fhir.STANDIN_LATENCY_MS:g} ms per request)"
                )
                note = note or "the Medplum server (integration/fhir_server.py) was not available"
            measured = fhir.measure(
                base_url,
                spec,
                seed,
                list(ALL_HOOKS),
                iterations,
                warmup=min(2, iterations),
                log_path=work / "fhir.log",
            )
        runs.append(
            {"chart": spec.name, "page_size": page_size, "server": server, "hooks": measured}
        )
        for sid, v in measured.items():
            _log(
                f"  {HOOK_OF[sid]}: wall {v['wall_ms']['p50']:.1f} ms, slowest request "
                f"{v['slowest_request_ms']['p50']:.1f} ms, slowest search "
                f"{v['slowest_search_ms']['p50']:.1f} ms, {v['requests_per_call']} requests"
            )
    results["fhir"] = {"runs": runs, "note": note}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--profile", choices=sorted(PROFILES), default="full")
    parser.add_argument("--smoke", action="store_true", help="same as --profile smoke")
    parser.add_argument(
        "--out",
        type=Path,
        default=REPO / "docs",
        help="where performance.md/.png/.json go (default: docs/)",
    )
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--skip", action="append", default=[], choices=STAGES)
    parser.add_argument("--fhir-server", choices=["auto", "medplum", "standin"], default="auto")
    parser.add_argument(
        "--baseline",
        type=Path,
        default=REPO / "benchmarks" / "baseline.json",
        help="earlier results shown as 'before' (default: benchmarks/baseline.json)",
    )
    parser.add_argument(
        "--save-baseline", action="store_true", help="write the results to --baseline instead"
    )
    parser.add_argument(
        "--database-url",
        default=None,
        help="the store of the inprocess, sweep, http and fhir stages (default: a new SQLite "
        "file in the run's temporary folder)",
    )
    parser.add_argument(
        "--stores",
        default="sqlite,postgres",
        help="the store stage's stores: sqlite, postgres or both (default); PostgreSQL from "
        "KETAMINE_CDS_TEST_POSTGRES_URL, skipped with a message when unreachable",
    )
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else args.profile]
    settings = bench_settings()
    results: dict[str, Any] = {
        "profile": profile.name,
        "machine": describe(),
        "config": {
            "seed": args.seed,
            "max_body_bytes": MAX_BODY_BYTES,
            "fhir_page_cap": settings.fhir_page_cap,
        },
        "load_average_start": load_average(),
    }
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="ketamine-bench-") as tmp:
        work = Path(tmp)
        # Every process this run starts (in-process runs, uvicorn workers) inherits these.
        os.environ["KETAMINE_CDS_DATABASE_URL"] = args.database_url or sqlite_target(work).url
        os.environ["KETAMINE_CDS_SUPPRESSION_SECRET"] = secrets.token_urlsafe(32)
        results["config"]["store"] = describe_store(os.environ["KETAMINE_CDS_DATABASE_URL"])
        if "inprocess" not in args.skip:
            results["inprocess"] = stage_inprocess(profile, args.seed, work)
        if "sweep" not in args.skip:
            results["sweep"] = stage_sweep(profile, args.seed, work)
        if "http" not in args.skip:
            stage_http(profile, args.seed, work, results)
        if "fhir" not in args.skip:
            stage_fhir(profile, args.seed, work, args.fhir_server, results)
        if "store" not in args.skip:
            stage_store(profile, args.seed, work, results, postgres="postgres" in args.stores)
    results["seconds"] = round(time.monotonic() - started, 1)
    results["load_average_end"] = load_average()
    if args.save_baseline:
        args.baseline.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
        _log(f"baseline written to {args.baseline}")
        return 0
    baseline = None
    if args.baseline.exists():
        baseline = json.loads(args.baseline.read_text(encoding="utf-8"))
    written = report.write(results, args.out, baseline)
    for target in report.targets(results):
        _log(f"{'MET ' if target['met'] else 'NOT '} {target['target']}: {target['measured']}")
    _log(f"done in {results['seconds']:.0f} s; wrote {', '.join(str(p) for p in written)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""docs/performance.md (tables), docs/performance.png (plot) and docs/performance.json (raw)."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

HOOK_NAMES = {
    "trd-ketamine-screen": "patient-view",
    "trd-antidepressant-order": "order-select",
    "ketamine-order-safety": "order-sign",
}
SCREEN = "trd-ketamine-screen"
_PREFETCH = {
    "typical": "all Observations prefetched",
    "typical-filtered": "Observations filtered by code",
}


def _ms(value: float | None, digits: int = 1) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.{digits}f}"


def _mb(size: int) -> str:
    return f"{size / 1_000_000:.2f}"


def linear_fit(points: list[tuple[float, float]]) -> tuple[float, float, float]:
    """Least-squares slope, intercept and R²."""
    n = len(points)
    if n < 2:
        return math.nan, math.nan, math.nan
    mean_x = sum(x for x, _ in points) / n
    mean_y = sum(y for _, y in points) / n
    sxx = sum((x - mean_x) ** 2 for x, _ in points)
    if sxx == 0:
        return math.nan, math.nan, math.nan
    slope = sum((x - mean_x) * (y - mean_y) for x, y in points) / sxx
    intercept = mean_y - slope * mean_x
    ss_tot = sum((y - mean_y) ** 2 for _, y in points)
    ss_res = sum((y - (slope * x + intercept)) ** 2 for x, y in points)
    return slope, intercept, (1 - ss_res / ss_tot) if ss_tot else 1.0


def _run(runs: list[dict[str, Any]] | None, spec: str) -> dict[str, Any] | None:
    return next((r for r in runs or [] if r["spec"] == spec), None)


def _throughput(
    http: dict[str, Any] | None, workers: int, key: str, size: str = "typical"
) -> tuple[float, int] | None:
    """(calls/s per worker, errors) of patient-view; key throughput[_repeat]."""
    run = ((http or {}).get(str(workers), {}).get(size, {}).get(SCREEN) or {}).get(key)
    if not run:
        return None
    return run["rps"] / workers, run["errors"]


# --- targets -------------------------------------------------------------------------------------


def _target1(res: dict[str, Any], key: str, size: str) -> tuple[float, str] | None:
    run = _run(res.get(key), size)
    if not run or SCREEN not in run["services"]:
        return None
    v = run["services"][SCREEN]
    cold, warm = v["latency_ms"]["p99"], v["warm_latency_ms"]["p99"]
    return cold, f"p99 {_ms(cold)} ms never-seen chart, {_ms(warm)} ms same chart again"


def _target2(res: dict[str, Any], key: str) -> tuple[float, float, str] | None:
    run = _run(res.get(key), "heavy")
    if not run:
        return None
    worst_sid, worst = max(run["services"].items(), key=lambda kv: kv[1]["latency_ms"]["p99"])
    p99 = worst["latency_ms"]["p99"]
    ratio = max(
        v["latency_ms"]["p99"] / v["decode_pure_ms"]["p50"] for v in run["services"].values()
    )
    warm = max(v["warm_latency_ms"]["p99"] for v in run["services"].values())
    return (
        p99,
        ratio,
        f"worst p99 {_ms(p99)} ms ({HOOK_NAMES[worst_sid]}), {ratio:.1f}x the decode; same "
        f"chart again: worst p99 {_ms(warm)} ms",
    )


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    store = results.get("config", {}).get("store", "SQLite")
    for size in ("typical", "typical-filtered"):
        t1 = _target1(results, "inprocess", size)
        if t1:
            out.append(
                {
                    "target": "1. typical, full prefetch, patient-view: server-side p99 <= 20 ms",
                    "config": f"as shipped, {store} store, {_PREFETCH[size]}",
                    "measured": t1[1],
                    "met": t1[0] <= 20,
                }
            )
    for entry in (results.get("store") or {}).get("stores", []):
        for key, how in (
            ("inprocess_no_jwt", "development mode"),
            ("inprocess", "a new JWT on every call"),
        ):
            if key not in entry:
                continue
            t1 = _target1({"inprocess": [entry[key]]}, "inprocess", entry[key]["spec"])
            if t1:
                out.append(
                    {
                        "target": "1. typical, full prefetch, patient-view: server-side p99 "
                        "<= 20 ms",
                        "config": f"as shipped, {entry['store']} store, {how}",
                        "measured": t1[1],
                        "met": t1[0] <= 20,
                    }
                )
    t2 = _target2(results, "inprocess")
    if t2:
        out.append(
            {
                "target": "2. heavy, full prefetch: p99 <= 150 ms and <= 5x orjson decode",
                "config": f"as shipped, {store} store",
                "measured": t2[2],
                "met": t2[0] <= 150 and t2[1] <= 5,
            }
        )
    for run in (results.get("fhir") or {}).get("runs", []):
        ratios = [v["ratio_wall_to_slowest_request"]["p50"] for v in run["hooks"].values()]
        searches = [v["ratio_wall_to_slowest_search"]["p50"] for v in run["hooks"].values()]
        out.append(
            {
                "target": "3. no prefetch: hook wall time <= 1.3x the slowest single query",
                "config": f"{run['chart']}, server page size {run['page_size']}",
                "measured": f"median wall / slowest request: worst {max(ratios):.2f}x; wall / "
                f"slowest search with all its pages: worst {max(searches):.2f}x",
                "met": max(ratios) <= 1.3,
            }
        )
    store_runs = [
        (f"store_{e['store']}", f"as shipped, {e['store']} store, a new JWT on every call", size)
        for e in (results.get("store") or {}).get("stores", [])
        for size in [(results.get("store") or {}).get("chart", "typical")]
    ]
    http_runs = {
        "http": results.get("http"),
        **{
            f"store_{e['store']}": {
                w: {results["store"]["chart"]: {SCREEN: r}} for w, r in e["http"].items()
            }
            for e in (results.get("store") or {}).get("stores", [])
        },
    }
    for key, label, size in (
        ("http", f"as shipped, {store} store", "typical"),
        ("http", f"as shipped, {store} store", "typical-filtered"),
        *store_runs,
    ):
        for mode, text in (
            ("throughput", "never-seen charts"),
            ("throughput_repeat", "same chart"),
        ):
            one = _throughput(http_runs.get(key), 1, mode, size)
            if one is None:
                continue
            two = _throughput(http_runs.get(key), 2, mode, size)
            measured = f"{text}: 1 worker {one[0]:.0f}/s ({one[1]} errors)"
            met = one[0] >= 300 and one[1] == 0
            if two is not None:
                measured += (
                    f"; 2 workers {2 * two[0]:.0f}/s ({two[1]} errors, {2 * two[0] / one[0]:.2f}x)"
                )
                met = met and two[1] == 0 and 2 * two[0] >= 1.7 * one[0]
            out.append(
                {
                    "target": "4. typical: >= 300 calls/s per worker, 0 errors; 2 workers ~2x",
                    "config": f"{label}, {_PREFETCH.get(size, size)}",
                    "measured": measured,
                    "met": met,
                }
            )
    for key, label in (("rss_fresh", "a fresh worker"), ("rss", "after all its HTTP runs")):
        rss = results.get(key)
        if not rss or len(rss.get("points", [])) < 2:
            continue
        first, last = rss["points"][1], rss["points"][-1]
        peak = max(last["rss_mb"])
        growth = peak - max(first["rss_mb"])
        out.append(
            {
                "target": "5. RSS <= 150 MB per worker after 10,000 calls, no growth",
                "config": f"as shipped, {label}, never-seen charts",
                "measured": f"{max(rss['points'][0]['rss_mb']):.0f} MB at the start, {peak:.0f} "
                f"MB after {last['calls']} calls ({growth:+.1f} MB since call {first['calls']})",
                "met": peak <= 150 and growth <= 5 and last["calls"] >= 10_000,
            }
        )
    return out


# --- markdown ------------------------------------------------------------------------------------


def _machine(results: dict[str, Any]) -> list[str]:
    machine = results["machine"]
    packages = ", ".join(f"{k} {v}" for k, v in machine["packages"].items())
    commit = machine.get("commit") or "unknown"
    if machine.get("dirty"):
        commit += " plus uncommitted changes"
    loads = results.get("load_average_start"), results.get("load_average_end")
    return [
        f"- **When**: {machine['date']}, commit {commit}, profile `{results['profile']}`, "
        f"{results.get('seconds', 0):.0f} s",
        f"- **CPU**: {machine['cpu']}, {machine['cores']} cores; **memory** "
        f"{machine['memory_gib']} GiB; **OS** {machine['os']}",
        f"- **Python** {machine['python']}; {packages}",
        f"- **Load generator**: {machine.get('wrk') or 'benchmarks.loadgen (wrk not installed)'}",
        f"- **Load average** (1/5/15 min) at start {loads[0]}, at end {loads[1]}",
        "- **Interference** (other work on the machine skews the figures): "
        + _interference(results),
    ]


def _interference(results: dict[str, Any]) -> str:
    shares = [
        v["cpu_share"]
        for runs in (
            results.get("inprocess"),
            results.get("sweep"),
            [
                e[k]
                for e in (results.get("store") or {}).get("stores", [])
                for k in ("inprocess", "inprocess_no_jwt")
                if k in e
            ],
        )
        for run in runs or []
        for v in run["services"].values()
        if "cpu_share" in v
    ]
    others: list[float] = []

    def walk(tree: Any) -> None:
        if isinstance(tree, dict):
            if "other_cpu_seconds" in tree and tree.get("seconds"):
                others.append(tree["other_cpu_seconds"] / tree["seconds"])
            for value in tree.values():
                walk(value)

    for key in ("http", "http_modes", "store"):
        walk(results.get(key))
    parts = []
    if shares:
        parts.append(
            f"in process, the measuring process had the CPU {min(shares):.0%} of the time at "
            "worst (100%: undisturbed)"
        )
    if others:
        parts.append(
            f"over HTTP, other processes used at most {max(others):.0%} of a core during a run"
        )
    return "; ".join(parts) or "not measured"


def _http_legend(*trees: Any) -> list[str]:
    found = False

    def walk(tree: Any) -> None:
        nonlocal found
        if isinstance(tree, dict):
            found = found or _disturbed(tree)
            for value in tree.values():
                walk(value)

    for tree in trees:
        walk(tree)
    if not found:
        return []
    return [
        f"† other processes on the machine used more than {DISTURBED:.0%} of a core during at "
        "least one run of that row (`other_cpu_seconds` in `performance.json`): its figures "
        "are low.",
        "",
    ]


def _inprocess_legend(*groups: list[dict[str, Any]] | None) -> list[str]:
    disturbed = any(
        v.get("cpu_share", 1.0) < 1 - DISTURBED
        for runs in groups
        for run in runs or []
        for v in run["services"].values()
    )
    if not disturbed:
        return []
    return [
        f"† the measuring process had the CPU less than {1 - DISTURBED:.0%} of the time during "
        "that measurement (other work on the machine): its figures are high.",
        "",
    ]


def _inprocess_table(runs: list[dict[str, Any]]) -> list[str]:
    lines = [
        "| Chart | Resources | Body MB | Hook | p50 ms | p95 ms | p99 ms | same chart again "
        "p50 / p99 ms | orjson decode ms | p99 / decode | Cards |",
        "|---|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for run in runs:
        for sid, v in run["services"].items():
            lat, warm = v["latency_ms"], v["warm_latency_ms"]
            decode = v["decode_pure_ms"]["p50"]
            flag = " †" if v.get("cpu_share", 1.0) < 1 - DISTURBED else ""
            lines.append(
                f"| {run['spec']} | {run['resources']} | {_mb(v['body_bytes'])} | "
                f"{HOOK_NAMES[sid]}{flag} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | "
                f"{_ms(lat['p99'])} "
                f"| {_ms(warm['p50'])} / {_ms(warm['p99'])} | {_ms(decode)} "
                f"| {lat['p99'] / decode:.1f}x | {v['cards']} |"
            )
    return lines


DISTURBED = 0.1
"""Other processes used more than this share of a core during a run: its figures are marked."""


def _disturbed(run: dict[str, Any]) -> bool:
    other, seconds = run.get("other_cpu_seconds"), run.get("seconds")
    return bool(other and seconds and other / seconds > DISTURBED)


def _http_table(http: dict[str, Any]) -> list[str]:
    lines = [
        "| Workers | Chart | Hook | latency p50 ms | p95 ms | p99 ms | calls/s, never-seen "
        "charts | per worker | calls/s, same chart | per worker | worker CPU s (same chart) "
        "| errors |",
        "|---:|---|---|---:|---:|---:|---:|---:|---:|---:|---|---:|",
    ]
    for workers, by_size in sorted(http.items()):
        for size, by_hook in by_size.items():
            for sid, runs in by_hook.items():
                lat = runs["latency"]["latency_ms"]
                cold, warm = runs["throughput"], runs["throughput_repeat"]
                errors = sum(r["errors"] for r in runs.values())
                w = int(workers)
                flag = " †" if any(_disturbed(r) for r in runs.values()) else ""
                lines.append(
                    f"| {workers} | {size} | {HOOK_NAMES[sid]}{flag} | {_ms(lat['p50'])} | "
                    f"{_ms(lat['p95'])} | {_ms(lat['p99'])} | {cold['rps']:.0f} | "
                    f"{cold['rps'] / w:.0f} | {warm['rps']:.0f} | {warm['rps'] / w:.0f} | "
                    f"{' / '.join(f'{c:.1f}' for c in warm.get('worker_cpu_seconds', []))} | "
                    f"{errors} |"
                )
    return lines


def _store_section(store: dict[str, Any] | None) -> list[str]:
    if not store:
        return []
    lines = [
        "## With the store and a JWT on every call",
        "",
        f"The {store['chart']} chart's patient-view (full prefetch) on each store: in "
        "development mode (no JWT), and with a new signed token (ES384) on every call, which "
        "the service checks against the trusted client's key and whose `jti` it records in the "
        "store (replay protection shared by all workers) before answering. Every call also "
        "writes the card log and looks up earlier feedback. Server-side in process, then over "
        "HTTP with one and two workers, with a JWT on every call (`benchmarks.loadgen` signs "
        "every token in its own process).",
        "",
        "| Store | JWT | p50 ms | p95 ms | p99 ms | same chart again p50 / p99 ms | Cards |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for entry in store["stores"]:
        for key, how in (
            ("inprocess_no_jwt", "none (development mode)"),
            ("inprocess", "new every call"),
        ):
            if key not in entry:
                continue
            v = entry[key]["services"][SCREEN]
            lat, warm = v["latency_ms"], v["warm_latency_ms"]
            flag = " †" if v.get("cpu_share", 1.0) < 1 - DISTURBED else ""
            lines.append(
                f"| {entry['store']}{flag} | {how} | {_ms(lat['p50'])} | {_ms(lat['p95'])} | "
                f"{_ms(lat['p99'])} | {_ms(warm['p50'])} / {_ms(warm['p99'])} | {v['cards']} |"
            )
    lines.append("")
    for entry in store["stores"]:
        lines += [
            f"{entry['store']} over HTTP:",
            "",
            *_http_table(
                {w: {store["chart"]: {SCREEN: runs}} for w, runs in entry["http"].items()}
            ),
            "",
        ]
    if store.get("postgres_skipped"):
        lines += [f"PostgreSQL: not measured: {store['postgres_skipped']}.", ""]
    return lines


def _sweep_table(sweep: list[dict[str, Any]]) -> tuple[list[str], list[str]]:
    hooks = list(HOOK_NAMES)
    header = "| Chart | Resources | Body MB | orjson decode ms | " + " | ".join(
        f"{HOOK_NAMES[h]} p50 ms | µs/resource" for h in hooks
    )
    lines = [header + " |", "|---|---:|---:|---:|" + "---:|---:|" * len(hooks)]
    for run in sweep:
        cells = []
        for h in hooks:
            v = run["services"].get(h)
            p50 = v["latency_ms"]["p50"] if v else math.nan
            cells += [_ms(p50), _ms(p50 * 1000 / run["resources"])]
        first = next(iter(run["services"].values()))
        lines.append(
            f"| {run['spec']} | {run['resources']} | {_mb(first['body_bytes'])} | "
            f"{_ms(first['decode_pure_ms']['p50'])} | " + " | ".join(cells) + " |"
        )
    fits = []
    for h in hooks:
        points = [
            (r["resources"], r["services"][h]["latency_ms"]["p50"])
            for r in sweep
            if h in r["services"]
        ]
        slope, intercept, r2 = linear_fit(points)
        if not math.isnan(slope):
            fits.append(
                f"- {HOOK_NAMES[h]}: p50 ≈ {intercept:.2f} ms + {slope * 1000:.1f} µs x "
                f"resources (R² = {r2:.3f})"
            )
    decode = [
        (r["resources"], next(iter(r["services"].values()))["decode_pure_ms"]["p50"]) for r in sweep
    ]
    slope, intercept, r2 = linear_fit(decode)
    if not math.isnan(slope):
        fits.append(
            f"- orjson decode: {intercept:.2f} ms + {slope * 1000:.1f} µs x resources "
            f"(R² = {r2:.3f})"
        )
    return lines, fits


def _rss_points(rss: dict[str, Any], title: str) -> list[str]:
    lines = [title, "", "| Calls | RSS (MB) |", "|---:|---:|"]
    for point in rss["points"]:
        lines.append(
            f"| {point['calls']} | " + ", ".join(f"{v:.1f}" for v in point["rss_mb"]) + " |"
        )
    return [*lines, "", f"Errors during these calls: {rss['errors']}.", ""]


def _rss_table(results: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    fresh = results.get("rss_fresh")
    if fresh:
        lines += _rss_points(
            fresh,
            f"A fresh uvicorn worker (one), {fresh.get('chart', '')} patient-view calls, each a "
            "never-seen chart (so the validation-verdict cache fills to its bound):",
        )
    rss = results.get("rss")
    if rss:
        lines += _rss_points(
            rss,
            "The single worker of the HTTP runs, after all of them (heavy charts included), "
            "then the same calls:",
        )
    two = results.get("rss_two_workers")
    if two:
        lines.append(
            "Two workers, after their HTTP runs: " + ", ".join(f"{v:.1f}" for v in two) + " MB."
        )
    return lines or ["(not measured)"]


def _fhir_table(results: dict[str, Any]) -> list[str]:
    fhir = results.get("fhir")
    if not fhir:
        return ["(not measured)"]
    lines = []
    if fhir.get("note"):
        lines += [f"Note: {fhir['note']}.", ""]
    lines += [
        "| Server | Chart | Page size | Hook | FHIR requests | wall p50 ms | p95 ms | slowest "
        "request p50 ms | slowest search, all pages, p50 ms | wall / slowest request | wall / "
        "slowest search | gaps |",
        "|---|---|---:|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for run in fhir.get("runs", []):
        for sid, v in run["hooks"].items():
            lines.append(
                f"| {run['server']} | {run['chart']} | {run['page_size']} | {HOOK_NAMES[sid]} | "
                f"{v['requests_per_call']} | {_ms(v['wall_ms']['p50'])} | "
                f"{_ms(v['wall_ms']['p95'])} | {_ms(v['slowest_request_ms']['p50'])} | "
                f"{_ms(v['slowest_search_ms']['p50'])} | "
                f"{v['ratio_wall_to_slowest_request']['p50']:.2f}x | "
                f"{v['ratio_wall_to_slowest_search']['p50']:.2f}x | "
                f"{'; '.join(v['gaps']) or 'none'} |"
            )
    return lines


def _before_after(results: dict[str, Any], baseline: dict[str, Any] | None) -> list[str]:
    if not baseline:
        return []
    machine = baseline["machine"]
    lines = [
        "## Before and after the optimisations",
        "",
        f"Before: the same benchmark (same harness, same machine) on the code before the "
        f"optimisations ({baseline.get('code') or 'commit ' + str(machine.get('commit'))}), "
        f"{machine['date']}, load average {baseline.get('load_average_start')}; kept in "
        "`benchmarks/baseline.json`.",
        "",
        "| Figure | Before | After |",
        "|---|---:|---:|",
    ]

    def inproc(res: dict[str, Any], spec: str, sid: str, key: str, field: str) -> float | None:
        run = _run(res.get("inprocess"), spec)
        if not run or sid not in run["services"]:
            return None
        value: float = run["services"][sid][field][key]
        return value

    for spec in ("typical", "heavy"):
        for sid in HOOK_NAMES:
            for key in ("p50", "p99"):
                before = inproc(baseline, spec, sid, key, "latency_ms")
                after = inproc(results, spec, sid, key, "latency_ms")
                if before is not None or after is not None:
                    lines.append(
                        f"| server-side {key} ms, {spec}, {HOOK_NAMES[sid]}, never-seen chart | "
                        f"{_ms(before)} | {_ms(after)} |"
                    )
            before = inproc(baseline, spec, sid, "p50", "warm_latency_ms")
            after = inproc(results, spec, sid, "p50", "warm_latency_ms")
            if before is not None or after is not None:
                lines.append(
                    f"| server-side p50 ms, {spec}, {HOOK_NAMES[sid]}, same chart again | "
                    f"{_ms(before)} | {_ms(after)} |"
                )
    for workers in (1, 2):
        for mode, text in (
            ("throughput", "never-seen charts"),
            ("throughput_repeat", "same chart"),
        ):
            b = _throughput(baseline.get("http"), workers, mode)
            a = _throughput(results.get("http"), workers, mode)
            if a or b:
                lines.append(
                    f"| typical patient-view calls/s per worker, {workers} worker(s), {text} | "
                    f"{_ms(b[0] if b else None, 0)} | {_ms(a[0] if a else None, 0)} |"
                )
    rss = [
        max(r["rss"]["points"][-1]["rss_mb"]) if r.get("rss") else None for r in (baseline, results)
    ]
    calls = [r["rss"]["points"][-1]["calls"] if r.get("rss") else None for r in (baseline, results)]
    if any(rss):
        lines.append(
            f"| RSS MB after the RSS run ({calls[0]} / {calls[1]} calls) | {_ms(rss[0], 0)} | "
            f"{_ms(rss[1], 0)} |"
        )
    before_runs = {
        (r["chart"], r["page_size"]): r for r in (baseline.get("fhir") or {}).get("runs", [])
    }
    for run in (results.get("fhir") or {}).get("runs", []):
        b = before_runs.get((run["chart"], run["page_size"]))
        a = run["hooks"].get(SCREEN)
        bv = b["hooks"].get(SCREEN) if b else None

        def show(v: dict[str, Any] | None) -> str:
            if not v:
                return "n/a"
            return (
                f"{v['wall_ms']['p50']:.0f} ms ({v['ratio_wall_to_slowest_request']['p50']:.2f}x)"
            )

        lines.append(
            f"| no prefetch, {run['chart']}, page size {run['page_size']}, patient-view: wall p50 "
            f"(wall / slowest request) | {show(bv)} | {show(a)} |"
        )
    return [*lines, ""]


def markdown(results: dict[str, Any], plot_written: bool, baseline: dict[str, Any] | None) -> str:
    config = results["config"]
    lines = [
        "# Performance",
        "",
        "Generated by `python -m benchmarks` (see the README's Performance section); do not edit "
        "by hand. Raw figures: `docs/performance.json`.",
        "",
        "## Machine",
        "",
        *_machine(results),
        "",
        "## Set-up",
        "",
        f"- **Charts** (`benchmarks/charts.py`, deterministic, seed {config['seed']}): *typical* "
        "(about 300 resources) and *heavy* (5,000 Observations, 400 medication records, 200 "
        "Conditions) in EHR shapes: MedicationRequest renewals (coded, contained and "
        "`_include`d Medications), BP panels, PHQ-9 series, labs and vitals, problem lists. "
        "Full prefetch fills every key; `observations` carries **all** the patient's "
        "Observations (an EHR that does not apply the template's code filter: the worst case). "
        "*typical-filtered* is the typical chart from an EHR that applies the filter.",
        "- **Service**: `service.main.create_app` in development mode on loopback (no JWT), "
        "JSON logs at INFO (as `ketamine-cds serve`), the charts' fixed clock, "
        f"`KETAMINE_CDS_MAX_BODY_BYTES={config['max_body_bytes']}` (the heavy body, 5.6 MB, "
        "is above the 5 MB default, which answers 413), "
        f"`KETAMINE_CDS_FHIR_PAGE_CAP={config['fhir_page_cap']}`.",
        "- **Never-seen chart / same chart again**: the service remembers validation verdicts "
        "by a digest of each resource (`fhir_mappers/parse.py`). *Never-seen* figures forget "
        "them before every call (in process) or send a new patient id in every resource of "
        "every call (over HTTP): each call validates everything it needs. *Same chart again* "
        "is an EHR calling the hooks again for the same patient.",
        "- **Server-side**: the request goes straight into the ASGI app in the measuring "
        "process (no sockets): body read, JSON decode, CDS Hooks validation, gathering, "
        "mapping, rules, cards, JSON encode, logging. The decode floor is `orjson.loads` of "
        "the same body with the garbage collector paused (the pure decode cost).",
        "- **End-to-end**: uvicorn (`benchmarks/serve.py`, configured as `ketamine-cds serve` "
        "configures it) in its own processes, one worker then two (two single-worker processes "
        "on `SO_REUSEPORT` sockets, so that the kernel spreads the connections; uvicorn's own "
        "`--workers` is measured separately below), driven over loopback by a load generator "
        "in another process: `wrk` for the same chart, `benchmarks.loadgen` for never-seen "
        "charts (it rewrites the patient id of each call cheaply). Latency with one connection, "
        "throughput with four connections per worker (closed loop). The 2 cores are shared by "
        "the workers and the load generator.",
        "- **As shipped**: the app as `ketamine-cds serve` builds it "
        "(`create_app(freeze_gc=True)`: the fhir.resources models imported at start-up and "
        "`gc.collect(); gc.freeze()`, so that the collections a large body triggers do not "
        "walk the app's long-lived objects), with its store: "
        f"{results.get('config', {}).get('store', 'SQLite')} (a fresh database per run) and a "
        "suppression secret, so that every call writes its card log and every patient-view "
        "call looks up earlier feedback and remembers its referral card. Development mode "
        "(no JWT) except in the store section, where every call carries a new signed token "
        "(ES384) whose `jti` the store records.",
        "",
        "## Targets",
        "",
        "| Target | Configuration | Measured | Met |",
        "|---|---|---|---|",
        *[
            f"| {t['target']} | {t['config']} | {t['measured']} | "
            f"{'yes' if t['met'] else '**no**'} |"
            for t in targets(results)
        ],
        "",
        *_before_after(results, baseline),
        "## Server-side latency (in process)",
        "",
        *_inprocess_table(results.get("inprocess", [])),
        "",
    ]
    lines += _inprocess_legend(results.get("inprocess"))
    lines += [
        "## End-to-end over HTTP (uvicorn)",
        "",
        *_http_table(results.get("http", {})),
        "",
        *_http_legend(results.get("http"), results.get("http_modes")),
    ]
    modes = results.get("http_modes") or {}
    if modes.get("shared"):
        lines += [
            "Two workers behind one shared listening socket (uvicorn's supervisor, socket bound "
            "with `IPPROTO_TCP`): an idle worker accepts every waiting connection, so a client "
            "with a few keep-alive connections may load one worker only (see the CPU split in "
            "`performance.json`, `worker_cpu_seconds`):",
            "",
            *_http_table(modes["shared"]),
            "",
        ]
    if modes.get("uvicorn"):
        lines += [
            "Two workers exactly as `uvicorn --workers 2` starts them: uvicorn binds the socket "
            "without `IPPROTO_TCP`, asyncio leaves TCP_NODELAY off, and each response waits for "
            "the client's delayed ACK (about 40 ms):",
            "",
            *_http_table(modes["uvicorn"]),
            "",
        ]
    lines += _store_section(results.get("store"))
    sweep_lines, fits = _sweep_table(results.get("sweep", []))
    lines += [
        "## Scaling with chart size",
        "",
        "The heavy chart's composition scaled down (server-side p50, in process, never-seen "
        "chart). Time per resource stays flat when the work is linear in the chart.",
        "",
        *sweep_lines,
        "",
        *fits,
        "",
    ]
    lines += [
        "![Latency against chart size](performance.png)"
        if plot_written
        else "(plot not drawn: matplotlib is not installed; `pip install -e '.[bench]'`)",
        "",
        "## Memory",
        "",
        *_rss_table(results),
        "",
        "## No prefetch: the service queries the FHIR server",
        "",
        "The hook sends no prefetch, only `fhirServer`; the service runs its six queries "
        "concurrently and follows `next` links. Requests are timed in the service's own HTTP "
        "client (send to last byte). A search that needs several pages costs one round trip "
        "per page, one after the other (the next page's URL is in the previous page).",
        "",
        *_fhir_table(results),
        "",
    ]
    return "\n".join(lines)


def plot(results: dict[str, Any], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    sweep = results.get("sweep", [])
    if not sweep:
        return False
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.8))
    series = [("as shipped", sweep, "-", "o")]
    colours: dict[str, Any] = {}
    for label, runs, style, marker in series:
        for sid, name in HOOK_NAMES.items():
            rows = [r for r in runs if sid in r["services"]]
            xs = [r["resources"] for r in rows]
            p50 = [r["services"][sid]["latency_ms"]["p50"] for r in rows]
            line = left.plot(
                xs,
                p50,
                linestyle=style,
                marker=marker,
                color=colours.get(sid),
                label=f"{name}, {label}",
            )[0]
            colours[sid] = line.get_color()
            right.plot(
                xs,
                [p * 1000 / x for p, x in zip(p50, xs, strict=True)],
                linestyle=style,
                marker=marker,
                color=colours[sid],
                label=f"{name}, {label}",
            )
    xs = [r["resources"] for r in sweep]
    decode = [next(iter(r["services"].values()))["decode_pure_ms"]["p50"] for r in sweep]
    left.plot(xs, decode, color="black", marker="s", label="orjson decode (floor)")
    left.set_xlabel("resources in the chart")
    left.set_ylabel("server-side p50, never-seen chart (ms)")
    left.set_title("Latency against chart size (full prefetch)")
    left.grid(alpha=0.3)
    left.legend(fontsize=7)
    right.set_xlabel("resources in the chart")
    right.set_ylabel("µs per resource (p50)")
    right.set_title("Time per resource")
    right.set_ylim(bottom=0)
    right.grid(alpha=0.3)
    right.legend(fontsize=7)
    machine = results["machine"]
    fig.suptitle(
        f"ketamine-cds {machine.get('commit') or ''}: {machine['cpu']} ({machine['cores']} "
        f"cores), {machine['python']}, {machine['date']}",
        fontsize=9,
    )
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return True


def write(results: dict[str, Any], out_dir: Path, baseline: dict[str, Any] | None) -> list[Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    png = out_dir / "performance.png"
    drawn = plot(results, png)
    md = out_dir / "performance.md"
    md.write_text(markdown(results, drawn, baseline), encoding="utf-8")
    raw = out_dir / "performance.json"
    raw.write_text(json.dumps(results, indent=1, sort_keys=True), encoding="utf-8")
    return [md, raw, *([png] if drawn else [])]

"""End-to-end figures over real HTTP: uvicorn in its own process(es), a load generator in
another (``wrk`` when installed, else ``benchmarks.loadgen``), RSS of each worker from /proc."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from benchmarks.app import BenchJwt

REPO = Path(__file__).resolve().parents[1]

WRK_SCRIPT = r"""
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Accept"] = "application/json"
local file = io.open(os.getenv("BENCH_BODY_FILE"), "rb")
wrk.body = file:read("*a")
file:close()

done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    '{"requests":%d,"duration_us":%d,"errors":{"connect":%d,"read":%d,"write":%d,' ..
    '"status":%d,"timeout":%d},"latency_us":{"min":%d,"p50":%d,"p95":%d,"p99":%d,' ..
    '"max":%d,"mean":%f}}\n',
    summary.requests, summary.duration, e.connect, e.read, e.write, e.status, e.timeout,
    latency.min, latency:percentile(50), latency:percentile(95), latency:percentile(99),
    latency.max, latency.mean))
end
"""

_offset = [0]


def _next_offset() -> int:
    """A fresh range of patient numbers for each unique-mode run (no id is sent twice)."""
    _offset[0] += 10**8
    return _offset[0]


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        if ppid == pid:
            found.append(int(entry.name))
    return sorted(found)


def cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mb(pid: int) -> float | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        return None
    return None


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    workers: int

    def worker_pids(self) -> list[int]:
        if self.workers == 1:
            return [self.process.pid]
        return [p for p in _children(self.process.pid) if _is_python(p)]

    def rss(self) -> list[float]:
        return [r for r in (rss_mb(p) for p in self.worker_pids()) if r is not None]

    def cpu_seconds(self) -> list[float]:
        """CPU time (user + system) each worker has used so far."""
        return [c for c in (cpu_seconds(p) for p in self.worker_pids()) if c is not None]


def _is_python(pid: int) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return False
    return b"spawn_main" in cmdline or b"--reuseport-child" in cmdline


@contextlib.contextmanager
def uvicorn_server(
    workers: int, log_path: Path, env: dict[str, str], *, mode: str = "reuseport"
) -> Iterator[Server]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            [
                sys.executable,
                "-m",
                "benchmarks.serve",
                "--port",
                str(port),
                "--workers",
                str(workers),
                "--mode",
                mode,
            ],
            cwd=REPO,
            env={**os.environ, **env, "PYTHONPATH": str(REPO)},
            stdout=log,
            stderr=log,
            start_new_session=True,
        )
    server = Server(url, process, workers)
    try:
        deadline = time.monotonic() + 60
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"uvicorn exited with {process.returncode}; see {log_path}")
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200 and (
                    workers == 1 or len(server.worker_pids()) >= workers
                ):
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start within 60 s; see {log_path}")
            time.sleep(0.1)
        yield server
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=5)


def warm(url: str, body: bytes, calls: int, signer: BenchJwt | None = None) -> None:
    with httpx.Client(timeout=30) as client:
        for _ in range(calls):
            headers = {"Content-Type": "application/json"}
            if signer is not None:
                headers["Authorization"] = f"Bearer {signer.token(url.rsplit('/', 1)[-1])}"
            response = client.post(url, content=body, headers=headers)
            if response.status_code != 200:
                raise RuntimeError(f"{url}: HTTP {response.status_code}: {response.text[:300]}")


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def load(
    url: str,
    body_file: Path,
    *,
    connections: int,
    duration: float,
    unique: bool,
    max_requests: int | None = None,
    prefer_wrk: bool = True,
    jwt_key: Path | None = None,
) -> dict[str, Any]:
    """Drive ``url`` from a separate process; returns requests, errors, rps, latency (ms).
    ``unique``: every call carries a chart never sent before (cold validation cache).
    ``jwt_key``: every call carries a new signed token (``benchmarks.loadgen``, never wrk)."""
    offset = _next_offset()
    # Never-seen charts come from benchmarks.loadgen: rewriting the patient id of every call
    # costs it far less CPU than wrk's Lua (the load generator shares the machine's cores).
    if prefer_wrk and not unique and max_requests is None and jwt_key is None and wrk_available():
        result = _wrk(url, body_file, connections=connections, duration=duration)
    else:
        command = [
            sys.executable,
            "-m",
            "benchmarks.loadgen",
            url,
            str(body_file),
            "--connections",
            str(connections),
            "--duration",
            str(duration),
        ]
        if unique:
            command += ["--unique-offset", str(offset)]
        if max_requests is not None:
            command += ["--max-requests", str(max_requests)]
        if jwt_key is not None:
            command += ["--jwt-key", str(jwt_key)]
        done = subprocess.run(  # noqa: S603 (our own module)
            command,
            cwd=REPO,
            env={**os.environ, "PYTHONPATH": str(REPO)},
            capture_output=True,
            check=True,
            timeout=duration + 120,
        )
        result = json.loads(done.stdout)
    result["unique"] = unique
    return result


def _wrk(url: str, body_file: Path, *, connections: int, duration: float) -> dict[str, Any]:
    script = body_file.with_suffix(".lua")
    script.write_text(WRK_SCRIPT)
    seconds = max(1, round(duration))
    command = [
        "wrk",
        "-t1",
        f"-c{connections}",
        f"-d{seconds}s",
        "--timeout",
        "10s",
        "-s",
        str(script),
        url,
    ]
    done = subprocess.run(  # noqa: S603
        command,
        capture_output=True,
        check=True,
        timeout=seconds + 60,
        text=True,
        env={**os.environ, "BENCH_BODY_FILE": str(body_file)},
    )
    line = next(x for x in done.stdout.splitlines() if x.startswith("{"))
    raw = json.loads(line)
    errors = sum(raw["errors"].values())
    seconds_run = raw["duration_us"] / 1e6
    lat = {k: v / 1000 for k, v in raw["latency_us"].items()}
    return {
        "tool": "wrk",
        "requests": raw["requests"],
        "errors": errors,
        "error_detail": raw["errors"],
        "seconds": seconds_run,
        "rps": raw["requests"] / seconds_run if seconds_run else 0.0,
        "latency_ms": {"n": raw["requests"], **lat},
        "connections": connections,
    }


def rss_growth(
    server: Server, url: str, body_file: Path, total: int, checkpoints: int = 5
) -> dict[str, Any]:
    """RSS of each worker after 0, total/checkpoints, ..., total calls, every call a
    never-seen chart (so that the validation cache fills up to its bound)."""
    points = [{"calls": 0, "rss_mb": server.rss()}]
    step = max(1, total // checkpoints)
    done = 0
    errors = 0
    while done < total:
        batch = min(step, total - done)
        result = load(
            url,
            body_file,
            connections=4,
            duration=600,
            max_requests=batch,
            unique=True,
            prefer_wrk=False,
        )
        done += result["requests"]
        errors += result["errors"]
        points.append({"calls": done, "rss_mb": server.rss()})
    return {"points": points, "errors": errors}

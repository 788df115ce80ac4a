"""Start and stop a real FHIR R4 server for tests and local tooling: Medplum's in-memory server.

    from integration.fhir_server import medplum_server

    with medplum_server(page_size=10) as fhir:
        fhir.base_url          # e.g. http://127.0.0.1:41237/fhir
        fhir.requests()        # what the server received: [{"method", "url", "status"}, ...]

The server is ``integration/medplum/server.mjs`` (``@medplum/fhir-router`` ``MemoryRepository``
behind a small HTTP wrapper on 127.0.0.1, a free port chosen by the OS). Nothing is installed
here: ``npm ci --prefix integration/medplum`` is run by ``scripts/test`` (and so by ``.ci/run``).
Every start is an empty server; stopping it discards everything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import httpx

MEDPLUM_DIR = Path(__file__).resolve().parent / "medplum"
SERVER_SCRIPT = MEDPLUM_DIR / "server.mjs"
MIN_NODE_MAJOR = 20
INSTALL_NODE = "install Node.js >= 20 (apt-get install nodejs npm)"
INSTALL_PACKAGES = (
    "the Medplum packages are not installed: run `npm ci --prefix integration/medplum` "
    "(./scripts/test does it)"
)


class FhirServerError(RuntimeError):
    """The FHIR test server cannot be started; the message says what to do."""


@dataclass(frozen=True)
class FhirTestServer:
    """A running server: its FHIR base URL and the test-only request log."""

    base_url: str
    page_size: int
    pid: int

    @property
    def admin_url(self) -> str:
        return self.base_url.rsplit("/", 1)[0] + "/_admin"

    def requests(self) -> list[dict[str, Any]]:
        """The requests received so far (method, path with query, status), oldest first."""
        response = httpx.get(f"{self.admin_url}/requests", timeout=10)
        response.raise_for_status()
        found: list[dict[str, Any]] = response.json()["requests"]
        return found

    def clear_requests(self) -> None:
        httpx.delete(f"{self.admin_url}/requests", timeout=10).raise_for_status()


def node_executable() -> str:
    """The ``node`` to run (``$KETAMINE_CDS_NODE`` or PATH), checked to be new enough."""
    node = os.environ.get("KETAMINE_CDS_NODE") or shutil.which("node")
    if not node:
        raise FhirServerError(f"node was not found on PATH: {INSTALL_NODE}")
    major = node_major(node)
    if major < MIN_NODE_MAJOR:
        raise FhirServerError(f"node is version {major}, too old: {INSTALL_NODE}")
    return node


def node_major(node: str) -> int:
    try:
        version = subprocess.run(  # noqa: S603 - a fixed argument list, no shell
            [node, "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        raise FhirServerError(f"cannot run {node} --version ({exc}): {INSTALL_NODE}") from exc
    match = re.match(r"v?(\d+)\.", version)
    if not match:
        raise FhirServerError(f"unexpected `node --version` output {version!r}: {INSTALL_NODE}")
    return int(match.group(1))


def _check_packages() -> None:
    marker = MEDPLUM_DIR / "node_modules" / "@medplum" / "fhir-router" / "package.json"
    if not marker.is_file():
        raise FhirServerError(INSTALL_PACKAGES)


def command(node: str, *, page_size: int, port: int = 0) -> list[str]:
    """The command line that starts the server (Node 20 needs --experimental-websocket)."""
    flags = ["--experimental-websocket"] if node_major(node) < 22 else []
    return [
        node,
        *flags,
        str(SERVER_SCRIPT),
        "--port",
        str(port),
        "--page-size",
        str(page_size),
    ]


def _first_line(stream: IO[str], timeout: float) -> str | None:
    """The first line the process prints, or None if it prints none within ``timeout``."""
    found: list[str] = []

    def read() -> None:
        found.append(stream.readline())

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    reader.join(timeout)
    return found[0] if found else None


@contextlib.contextmanager
def medplum_server(
    *, page_size: int = 20, startup_seconds: float = 60.0
) -> Iterator[FhirTestServer]:
    """Start the server on a free loopback port, wait until it answers, stop it afterwards."""
    node = node_executable()
    _check_packages()
    with tempfile.TemporaryFile(mode="w+", encoding="utf-8") as stderr:
        process = subprocess.Popen(  # noqa: S603 - a fixed argument list, no shell
            command(node, page_size=page_size),
            cwd=MEDPLUM_DIR,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        try:
            assert process.stdout is not None
            line = _first_line(process.stdout, startup_seconds)
            if not line:
                stderr.seek(0)
                raise FhirServerError(
                    f"the Medplum FHIR server did not start within {startup_seconds:.0f} s "
                    f"(exit code {process.poll()}): {stderr.read()[-2000:]}"
                )
            try:
                ready = json.loads(line)
            except json.JSONDecodeError as exc:
                raise FhirServerError(f"unexpected server output: {line[:500]!r}") from exc
            server = FhirTestServer(str(ready["base"]), int(ready["pageSize"]), process.pid)
            _wait_until_answering(server, deadline=time.monotonic() + startup_seconds)
            yield server
        finally:
            _stop(process)


def _wait_until_answering(server: FhirTestServer, *, deadline: float) -> None:
    while True:
        try:
            if httpx.get(f"{server.admin_url}/health", timeout=5).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        if time.monotonic() > deadline:
            raise FhirServerError(f"the FHIR server at {server.base_url} does not answer")
        time.sleep(0.05)


def _stop(process: subprocess.Popen[str]) -> None:
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=10)
    if process.stdout is not None:
        process.stdout.close()


def main() -> None:
    """``python -m integration.fhir_server [PAGE_SIZE]``: run a server until Ctrl-C."""
    import signal
    import sys

    def stop(signum: int, frame: object) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    page_size = int(sys.argv[1]) if len(sys.argv) > 1 else 20
    with medplum_server(page_size=page_size) as server:
        sys.stdout.write(f"FHIR R4 server at {server.base_url} (Ctrl-C stops it)\n")
        sys.stdout.flush()
        while True:
            time.sleep(3600)


if __name__ == "__main__":
    main()

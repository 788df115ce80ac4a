"""``ketamine-cds serve [--workers N]``: one process, or a supervisor and N worker processes that
share one port.

One worker (the default) is uvicorn in this process, as before. With ``--workers N`` (N > 1)
this process becomes a supervisor:

- it checks the store first (SQLite: upgraded; PostgreSQL: must be migrated, else it stops with
  a message naming ``ketamine-cds db upgrade``), and that the port is free;
- it starts N worker processes (``python -m service.serving --worker``), each running uvicorn on
  its own listening socket bound with ``SO_REUSEPORT`` to the same address, so that the kernel
  spreads connections over them. The sockets are created with ``IPPROTO_TCP``: asyncio then sets
  ``TCP_NODELAY`` on every connection. (uvicorn's own ``--workers`` binds with protocol 0,
  asyncio leaves Nagle's algorithm on, and every response waits ~40 ms for the client's delayed
  ACK: ``docs/performance.md``);
- Prometheus metrics are summed over the workers: the supervisor creates a private directory for
  prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``), hands it to the workers
  and deletes it when it stops;
- a worker that dies is replaced (a worker that keeps dying within seconds of its start makes the
  supervisor give up and exit 1 rather than loop);
- SIGTERM or SIGINT: every worker is asked to stop (SIGTERM); uvicorn stops accepting, lets the
  calls in flight finish (up to ``--graceful-timeout`` seconds), drains the card log, and exits;
  then the supervisor exits 0. Workers run in their own process groups, so only the supervisor
  decides when they stop; a worker whose supervisor disappears stops by itself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from typing import Any

logger = logging.getLogger("service.serving")

MAX_WORKERS = 64
RAPID_EXIT_SECONDS = 10.0
"""A worker that exits sooner than this after its start counts as a failed start."""
MAX_RAPID_EXITS = 5
"""Consecutive failed starts after which the supervisor gives up (exit 1)."""
POLL_SECONDS = 0.2
KILL_GRACE_SECONDS = 10.0
"""Beyond the graceful timeout: what a worker gets to drain its card log and close."""
BACKLOG = 2048


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", default=os.environ.get("KETAMINE_CDS_BIND_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: no JWT (same as KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true)",
    )
    serve.add_argument(
        "--workers",
        type=_worker_count,
        default=1,
        help="worker processes sharing the port (SO_REUSEPORT), under a supervisor (default 1)",
    )
    serve.add_argument(
        "--graceful-timeout",
        type=float,
        default=25.0,
        help="seconds the calls in flight get to finish after SIGTERM (default 25)",
    )
    serve.set_defaults(func=cmd_serve)


def _worker_count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 1 <= value <= MAX_WORKERS:
        raise argparse.ArgumentTypeError(f"--workers must be 1 to {MAX_WORKERS}")
    return value


def load_settings(host: str | None = None, dev: bool = False) -> Any:
    """The settings from the environment (and ``--host``/``--dev``), or exit 2 with the
    messages naming the settings that are wrong."""
    from pydantic import ValidationError

    from service.settings import Settings

    overrides: dict[str, Any] = {}
    if host is not None:
        overrides["bind_host"] = host
    if dev:
        overrides["allow_unauthenticated"] = True
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            print(f"configuration error: {error['msg']}", file=sys.stderr)  # noqa: T201
        raise SystemExit(2) from exc


def check_store(database_url: str) -> int:
    """Start-up's store check, before any worker starts: 0 when the store is usable (SQLite:
    after upgrading it), else a message on stderr and 2 (schema behind) or 1 (unreachable)."""
    from service.errors import StoreUnavailable
    from service.store import Store, StoreNotMigrated

    async def prepare() -> None:
        store = Store.open(database_url)
        try:
            await store.prepare()
        finally:
            await store.close()

    try:
        asyncio.run(prepare())
    except StoreNotMigrated as exc:
        print(f"error: {exc}", file=sys.stderr)  # noqa: T201
        return 2
    except StoreUnavailable:
        from service.store.engine import describe

        print(  # noqa: T201
            f"error: the store {describe(database_url)} cannot be reached or opened "
            "(KETAMINE_CDS_DATABASE_URL); the service does not start without it",
            file=sys.stderr,
        )
        return 1
    return 0


def cmd_serve(args: argparse.Namespace) -> int:
    from service.logging_setup import configure_logging

    settings = load_settings(args.host, args.dev)
    configure_logging(settings.log_level)
    code = check_store(settings.database_url)
    if code:
        return code
    if args.workers == 1:
        return _serve_here(settings, args.host, args.port, args.graceful_timeout)
    return Supervisor(
        host=args.host,
        port=args.port,
        workers=args.workers,
        dev=args.dev,
        graceful_timeout=args.graceful_timeout,
    ).run()


def _uvicorn_config(settings: Any, host: str, port: int, graceful_timeout: float) -> Any:
    import uvicorn

    from service.main import create_app

    return uvicorn.Config(
        create_app(settings, freeze_gc=True),
        host=host,
        port=port,
        log_config=None,
        timeout_graceful_shutdown=max(int(graceful_timeout), 1),
        backlog=BACKLOG,
    )


def _serve_here(settings: Any, host: str, port: int, graceful_timeout: float) -> int:
    """One worker, in this process (uvicorn binds with asyncio: TCP_NODELAY is set)."""
    import uvicorn

    server = uvicorn.Server(_uvicorn_config(settings, host, port, graceful_timeout))
    server.run()
    return 0 if server.started else 3


def reuseport_socket(host: str, port: int) -> socket.socket:
    """A listening-to-be socket of its own on a shared port. ``IPPROTO_TCP`` is what makes
    asyncio set TCP_NODELAY on the connections it accepts."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((address, port))
    return sock


def port_is_free(host: str, port: int) -> bool:
    """Whether nothing listens on the port (a plain bind, without SO_REUSEPORT, fails when any
    socket holds it; with SO_REUSEPORT another server of the same user could silently join)."""
    address = host.strip("[]")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((address, port))
        except OSError:
            return False
    return True


# -- the worker -------------------------------------------------------------------------------


def worker_main(argv: list[str] | None = None) -> int:
    from service.logging_setup import configure_logging

    parser = argparse.ArgumentParser(prog="ketamine-cds serve (worker)")
    parser.add_argument("--worker", action="store_true", required=True)
    parser.add_argument("--host", required=True)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--dev", action="store_true")
    parser.add_argument("--graceful-timeout", type=float, default=25.0)
    parser.add_argument("--parent-pid", type=int, required=True)
    args = parser.parse_args(argv)
    settings = load_settings(args.host, args.dev)
    configure_logging(settings.log_level)
    import uvicorn

    server = uvicorn.Server(_uvicorn_config(settings, args.host, args.port, args.graceful_timeout))
    watchdog = threading.Thread(
        target=_watch_parent, args=(args.parent_pid, server), daemon=True, name="parent-watch"
    )
    watchdog.start()
    server.run(sockets=[reuseport_socket(args.host, args.port)])
    return 0 if server.started else 3


def _watch_parent(parent_pid: int, server: Any) -> None:
    """Stop gracefully when the supervisor is gone (killed without a chance to stop us)."""
    while not server.should_exit:
        time.sleep(1.0)
        if os.getppid() != parent_pid:
            logger.warning("supervisor gone: worker stopping pid=%d", os.getpid())
            server.should_exit = True
            return


# -- the supervisor -----------------------------------------------------------------------------


@dataclass
class _Slot:
    number: int
    process: subprocess.Popen[bytes] | None = None
    started: float = 0.0


class Supervisor:
    def __init__(
        self, *, host: str, port: int, workers: int, dev: bool, graceful_timeout: float
    ) -> None:
        self.host = host
        self.port = port
        self.dev = dev
        self.graceful_timeout = graceful_timeout
        self.slots = [_Slot(n) for n in range(workers)]
        self.stopping = False
        self.rapid_exits = 0
        self.metrics_dir = ""

    def _command(self) -> list[str]:
        command = [
            sys.executable,
            "-m",
            "service.serving",
            "--worker",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--graceful-timeout",
            str(self.graceful_timeout),
            "--parent-pid",
            str(os.getpid()),
        ]
        if self.dev:
            command.append("--dev")
        return command

    def _start(self, slot: _Slot) -> None:
        from service.metrics import MULTIPROC_ENV

        environment = {**os.environ, MULTIPROC_ENV: self.metrics_dir}
        slot.process = subprocess.Popen(  # noqa: S603 (our own module, fixed arguments)
            self._command(), env=environment, process_group=0
        )
        slot.started = time.monotonic()
        logger.info("worker started slot=%d pid=%d", slot.number, slot.process.pid)

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.stopping = True

    def run(self) -> int:
        if not port_is_free(self.host, self.port):
            print(  # noqa: T201
                f"error: {self.host}:{self.port} is already in use; choose another --port",
                file=sys.stderr,
            )
            return 1
        self.metrics_dir = tempfile.mkdtemp(prefix="ketamine-cds-metrics-")
        previous = {
            sig: signal.signal(sig, self._on_signal) for sig in (signal.SIGTERM, signal.SIGINT)
        }
        code = 0
        try:
            logger.info(
                "supervisor started pid=%d workers=%d port=%d metrics_dir=%s",
                os.getpid(),
                len(self.slots),
                self.port,
                self.metrics_dir,
            )
            for slot in self.slots:
                self._start(slot)
            code = self._watch()
        finally:
            self._stop_all()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            shutil.rmtree(self.metrics_dir, ignore_errors=True)
            logger.info("supervisor stopped code=%d", code)
        return code

    def _watch(self) -> int:
        from prometheus_client import multiprocess

        while not self.stopping:
            time.sleep(POLL_SECONDS)
            for slot in self.slots:
                process = slot.process
                if process is None or process.poll() is None or self.stopping:
                    continue
                lived = time.monotonic() - slot.started
                multiprocess.mark_process_dead(process.pid, self.metrics_dir)  # type: ignore[no-untyped-call]
                logger.warning(
                    "worker exited slot=%d pid=%d code=%s after_s=%.1f; restarting",
                    slot.number,
                    process.pid,
                    process.returncode,
                    lived,
                )
                self.rapid_exits = self.rapid_exits + 1 if lived < RAPID_EXIT_SECONDS else 0
                if self.rapid_exits >= MAX_RAPID_EXITS:
                    logger.error(
                        "workers keep exiting right after their start (%d times); giving up",
                        self.rapid_exits,
                    )
                    return 1
                time.sleep(min(self.rapid_exits, 5) * 0.5)
                self._start(slot)
        return 0

    def _stop_all(self) -> None:
        live = [s.process for s in self.slots if s.process is not None and s.process.poll() is None]
        for process in live:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + self.graceful_timeout + KILL_GRACE_SECONDS
        for process in live:
            try:
                process.wait(timeout=max(deadline - time.monotonic(), 0.1))
            except subprocess.TimeoutExpired:
                logger.error("worker did not stop in time; killed pid=%d", process.pid)
                process.kill()
                process.wait(timeout=5)


if __name__ == "__main__":
    raise SystemExit(worker_main())

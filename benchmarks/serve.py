"""Start the benchmarked app under uvicorn the way ``ketamine-cds serve`` does (JSON logs,
``log_config=None``), with N workers: ``python -m benchmarks.serve --port P --workers N``.
Loopback only.

Several workers, three ways (``--mode``):

- ``reuseport`` (default): N single-worker uvicorn processes, each listening on its own
  ``SO_REUSEPORT`` socket, so that the kernel spreads connections over them. This is what the
  two-worker figures use.
- ``shared``: uvicorn's supervisor (``--workers N``) with one shared listening socket bound with
  ``IPPROTO_TCP``. An idle worker's event loop accepts every connection that is waiting, so a
  client with a few keep-alive connections can end up on one worker.
- ``uvicorn``: exactly ``uvicorn --workers N``: uvicorn binds the socket as
  ``socket.socket(AF_INET)`` (protocol 0), asyncio then never sets TCP_NODELAY on the
  connections, and every response waits for the client's delayed ACK (about 40 ms on Linux).
"""

from __future__ import annotations

import argparse
import signal
import socket
import subprocess
import sys
from types import FrameType

import uvicorn
from uvicorn.supervisors import Multiprocess


def tcp_socket(host: str, port: int, *, reuseport: bool = False) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    if reuseport:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((host, port))
    sock.set_inheritable(True)
    return sock


def _reuseport_workers(port: int, workers: int) -> int:
    """Start ``workers`` single-worker processes on SO_REUSEPORT sockets; stop them on SIGTERM."""
    children = [
        subprocess.Popen(  # noqa: S603 (this module, fixed arguments)
            [sys.executable, "-m", "benchmarks.serve", "--port", str(port), "--reuseport-child"]
        )
        for _ in range(workers)
    ]

    def stop(signum: int, frame: FrameType | None) -> None:
        for child in children:
            child.terminate()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    return max(child.wait() for child in children)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--mode", choices=["reuseport", "shared", "uvicorn"], default="reuseport")
    parser.add_argument("--reuseport-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.workers > 1 and args.mode == "reuseport":
        return _reuseport_workers(args.port, args.workers)
    config = uvicorn.Config(
        "benchmarks.app:uvicorn_app",
        factory=True,
        host="127.0.0.1",
        port=args.port,
        workers=args.workers,
        log_config=None,
    )
    if args.reuseport_child:
        uvicorn.Server(config).run(sockets=[tcp_socket("127.0.0.1", args.port, reuseport=True)])
        return 0
    if args.workers == 1:
        uvicorn.Server(config).run()
        return 0
    sock = config.bind_socket() if args.mode == "uvicorn" else tcp_socket("127.0.0.1", args.port)
    Multiprocess(config, sockets=[sock]).run()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

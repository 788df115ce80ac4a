"""``ketamine-cds serve [--host 127.0.0.1] [--port 8080] [--dev]``: run the CDS Hooks service."""

from __future__ import annotations

import argparse
import os
from typing import Any

from pydantic import ValidationError

from ehr.output import errors
from service.settings import Settings


def settings_for(host: str, *, dev: bool) -> Settings:
    """The service's settings bound to ``host`` (``dev``: no JWT); exit 2 naming a bad setting."""
    overrides: dict[str, Any] = {"bind_host": host}
    if dev:
        overrides["allow_unauthenticated"] = True
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        for error in exc.errors():
            errors.print(f"[red]configuration error:[/red] {error['msg']}")
        raise SystemExit(2) from exc


def cmd_serve(args: argparse.Namespace) -> int:
    import uvicorn

    from service.logging_setup import configure_logging
    from service.main import create_app

    settings = settings_for(args.host, dev=args.dev)
    configure_logging(settings.log_level)
    uvicorn.run(
        create_app(settings, freeze_gc=True), host=args.host, port=args.port, log_config=None
    )
    return 0


def register(sub: Any) -> None:
    serve = sub.add_parser("serve", help="run the CDS Hooks service")
    serve.add_argument("--host", default=os.environ.get("KETAMINE_CDS_BIND_HOST", "127.0.0.1"))
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--dev",
        action="store_true",
        help="development mode: no JWT (same as KETAMINE_CDS_ALLOW_UNAUTHENTICATED=true)",
    )
    serve.set_defaults(func=cmd_serve)

"""Application state handed to the routes (settings, knowledge, HTTP client, clock, store)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import httpx
from fastapi import Request

from hooks.base import HookService
from hooks.rules.knowledge import Knowledge
from service.auth import Verifier
from service.settings import Settings

if TYPE_CHECKING:
    from service.operations import Operations

Clock = Callable[[], datetime]


@dataclass
class AppState:
    settings: Settings
    knowledge: Knowledge
    registry: tuple[HookService, ...]
    http_client: httpx.AsyncClient
    clock: Clock
    verifier: Verifier | None = None
    operations: Operations | None = None
    """The shared store, card log and purge (``service.operations``)."""


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.cds
    return state

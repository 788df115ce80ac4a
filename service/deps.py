"""Application state handed to the routes (settings, knowledge, HTTP client, clock)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

import httpx
from fastapi import Request

from hooks.base import HookService
from hooks.rules.knowledge import Knowledge
from service.auth import Verifier
from service.settings import Settings

Clock = Callable[[], datetime]


@dataclass
class AppState:
    settings: Settings
    knowledge: Knowledge
    registry: tuple[HookService, ...]
    http_client: httpx.AsyncClient
    clock: Clock
    verifier: Verifier | None = None


def state_of(request: Request) -> AppState:
    state: AppState = request.app.state.cds
    return state

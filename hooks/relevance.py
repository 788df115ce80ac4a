"""Which FHIR resources the rules can use, decided cheaply before any validation.

Validating a resource with fhir.resources costs 50-150 µs; decoding it costs about 1 µs. So the
mappers validate only what a rule reads, and this module decides what that is, per type:

- Condition: a code (or text) in one of the code lists that apply to ``Condition.code``, any
  date.
- MedicationRequest / MedicationStatement: a product that resolves to a known drug, any date (a
  trial may chain renewals back for years).
- Observation: a code in one of the rules' observation lists and, for lists that every rule
  reads only over a fixed recent window (``OBSERVATION_WINDOWS``), an effective date inside the
  widest such window (plus a day). PHQ-9 totals are kept at any date (trials look back). An
  Observation whose date cannot be read is kept (validation then reports it if malformed).
- AllergyIntolerance and Patient: always (few, and allergy names are often free text).

The indexes (code sets, one combined text pattern, windows) are built once per knowledge.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from fhir_mappers.facts import Concept, IngredientStrength
from fhir_mappers.observation import observation_effective
from hooks.rules.knowledge import Knowledge
from hooks.rules.medications import is_known_drug


def condition_lists(knowledge: Knowledge) -> tuple[str, ...]:
    """The code lists matched against ``Condition.code`` (each list says what it applies to)."""
    return tuple(n for n, cl in knowledge.lists.items() if cl.applies_to == "Condition.code")


def observation_lists(knowledge: Knowledge) -> tuple[str, ...]:
    """The code lists matched against ``Observation.code`` (what the observations template
    asks for, and what the filter keeps)."""
    return tuple(n for n, cl in knowledge.lists.items() if cl.applies_to == "Observation.code")


OBSERVATION_WINDOWS: dict[str, tuple[str, ...] | None] = {
    "phq9-total": None,  # trial baselines and follow-ups, however old the trial
    "phq9-item9": ("phq9_item9_recent_days",),  # assessment: latest item 9 in that window
    "phq9-panel": None,  # its total component feeds trial baselines and follow-ups
    "bp-panel": ("bp_window_days", "order_bp_recent_days"),  # contraindications, order-sign
    "bp-systolic": ("bp_window_days", "order_bp_recent_days"),
    "bp-diastolic": ("bp_window_days", "order_bp_recent_days"),
    "body-weight": ("order_weight_recent_days",),  # order-sign: latest weight in that window
    "pregnancy-status": ("pregnancy_window_weeks",),  # contraindications: within the window
}
"""How far back the rules read each observation list: the thresholds whose largest value bounds
every rule that uses the list (None, or a list not named here: no bound). A rule that starts
reading a list further back must be added here."""

WINDOW_MARGIN = timedelta(days=1)

_UNIT_DAYS = {"days": 1.0, "day": 1.0, "weeks": 7.0, "week": 7.0}


@dataclass(frozen=True)
class _Index:
    condition_codes: frozenset[tuple[str, str]]
    condition_text: re.Pattern[str] | None
    observation_windows: dict[tuple[str, str], timedelta | None]
    """Every observation code a rule reads -> how far back (None: any date)."""
    observation_code_values: frozenset[str]
    """The bare codes of ``observation_windows`` (a first, cheaper test)."""


def _window(knowledge: Knowledge, names: tuple[str, ...] | None) -> timedelta | None:
    if names is None:
        return None
    days = []
    for name in names:
        threshold = getattr(knowledge.thresholds, name)
        factor = _UNIT_DAYS.get(threshold.unit)
        if factor is None:
            return None  # a unit we cannot convert: no date filter (safe)
        days.append(threshold.value * factor)
    return timedelta(days=max(days))


def _build_index(knowledge: Knowledge) -> _Index:
    codes: set[tuple[str, str]] = set()
    patterns: list[str] = []
    for name in condition_lists(knowledge):
        code_list = knowledge.code_list(name)
        codes |= code_list.codes
        patterns += [p.pattern for p in code_list.patterns]
    combined: re.Pattern[str] | None = None
    if patterns:
        try:
            combined = re.compile("|".join(f"(?:{p})" for p in patterns))
        except re.error:  # a pattern that cannot be combined: match list by list
            combined = None
    windows: dict[tuple[str, str], timedelta | None] = {}
    unbounded: set[tuple[str, str]] = set()
    for name in observation_lists(knowledge):
        window = _window(knowledge, OBSERVATION_WINDOWS.get(name))
        for pair in knowledge.code_list(name).codes:
            if window is None or pair in unbounded:
                unbounded.add(pair)
                windows[pair] = None
            else:
                known = windows.get(pair)
                windows[pair] = window if known is None or window > known else known
    return _Index(frozenset(codes), combined, windows, frozenset(c for _, c in windows))


_INDEXES: dict[int, tuple[Knowledge, _Index]] = {}


def _index(knowledge: Knowledge) -> _Index:
    """The index of a knowledge object, built on first use and kept (knowledge is immutable)."""
    cached = _INDEXES.get(id(knowledge))
    if cached is not None and cached[0] is knowledge:
        return cached[1]
    index = _build_index(knowledge)
    _INDEXES[id(knowledge)] = (knowledge, index)
    return index


class KnowledgeRelevance:
    """Keeps the Conditions, medications, Observations and allergies some rule looks at.

    With ``now``, Observations of the windowed lists older than their window are dropped too.
    One instance serves one request (it memoises product decisions for the renewals)."""

    def __init__(self, knowledge: Knowledge, now: datetime | None = None) -> None:
        self._knowledge = knowledge
        self._now = now
        self._index = _index(knowledge)
        self._conditions = tuple(knowledge.code_list(n) for n in condition_lists(knowledge))
        self._products: dict[tuple[Concept, tuple[IngredientStrength, ...]], bool] = {}

    def condition(self, code: Concept) -> bool:
        index = self._index
        if any((c.system, c.code) in index.condition_codes for c in code.codings):
            return True
        texts = [t.lower() for t in code.texts()]
        if not texts:
            return False
        if index.condition_text is not None:
            return any(index.condition_text.search(t) for t in texts)
        return any(cl.matches_text(t) for cl in self._conditions for t in texts)

    def medication(self, product: Concept, ingredients: tuple[IngredientStrength, ...]) -> bool:
        key = (product, ingredients)
        known = self._products.get(key)
        if known is None:
            known = self._products[key] = is_known_drug(product, ingredients, self._knowledge)
        return known

    def observation(self, codes: list[Concept]) -> bool:
        wanted = self._index.observation_windows
        return any((c.system, c.code) in wanted for concept in codes for c in concept.codings)

    def observation_resource(self, resource: dict[str, Any]) -> bool:
        index = self._index
        codes = index.observation_code_values
        windows = index.observation_windows
        found = False
        widest: timedelta | None = timedelta(0)
        concepts = [resource.get("code")]
        components = resource.get("component")
        if isinstance(components, list):
            concepts += [c.get("code") for c in components if isinstance(c, dict)]
        for value in concepts:
            codings = value.get("coding") if isinstance(value, dict) else None
            if not isinstance(codings, list):
                continue
            for coding in codings:
                if not isinstance(coding, dict):
                    continue
                # The same normalisation as fhir_mappers.codes.concept (int codes as text).
                code = coding.get("code")
                if isinstance(code, int):
                    code = str(code)
                elif not isinstance(code, str):
                    continue
                system = coding.get("system")
                if code not in codes or not isinstance(system, str):
                    continue
                pair = (system, code)
                if pair not in windows:
                    continue
                found = True
                window = windows[pair]
                if window is None:
                    widest = None
                elif widest is not None and window > widest:
                    widest = window
        if not found:
            return False
        if widest is None or self._now is None:
            return True
        effective = observation_effective(resource)
        return effective is None or effective >= self._now - widest - WINDOW_MARGIN

    def allergy(self, code: Concept) -> bool:
        return True

    @property
    def observation_codes(self) -> frozenset[tuple[str, str]]:
        return frozenset(self._index.observation_windows)

"""Clinical knowledge: versioned data files, validated once at start-up.

Every code list, dose and threshold that a rule uses lives in a JSON file under
``hooks/rules/knowledge/`` and carries the tag of its source; the tags are explained in each file's
``sources`` table (see ``docs/knowledge.md``). ``load_knowledge()`` parses the files into frozen
pydantic models and builds the lookup indexes the rules need, so that a bad file stops start-up with
a message naming the file, and no rule ever reads a file.

Files:

- ``drugs.json``: ingredients (RxNorm IN code, class, role, minimum adequate daily dose, names and
  brand names), products (RxNorm SCD/SBD codes -> ingredients and strengths), excluded products.
- ``codes.json``: named code lists for Conditions (depression, bipolar phases, psychosis, ...),
  Observations (LOINC) and values.
- ``policy.json``: every numeric threshold and window used by the rules, and the rule-set version.

Version history: see the ``version_history`` of each file. The rule-set version is
``policy.ruleset_version``; it appears in every card's source label and in logs.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import cache
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from hooks.errors import KnowledgeBaseError

KNOWLEDGE_DIR = Path(__file__).parent / "knowledge"

SYSTEM_ALIASES: dict[str, str] = {
    "ICD-10-CM": "http://hl7.org/fhir/sid/icd-10-cm",
    "SNOMED CT": "http://snomed.info/sct",
    "LOINC": "http://loinc.org",
    "RxNorm": "http://www.nlm.nih.gov/research/umls/rxnorm",
}
"""Short names accepted in knowledge files for the FHIR code-system URIs."""

M = TypeVar("M", bound=BaseModel)

Role = Literal[
    "antidepressant",
    "augmenter",
    "bipolar",
    "target-therapy",
    "cns-depressant",
    "psychostimulant",
    "other",
]
Interaction = Literal["cns-depressant", "psychostimulant", "maoi"]
"""What an ingredient taken with esketamine/ketamine calls for (SPRAVATO PI drug interactions):
sedation and respiratory monitoring, or close blood-pressure monitoring."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VersionEntry(_Frozen):
    version: int
    date: str
    change: str


class Ingredient(_Frozen):
    name: str = Field(description="lowercase generic name, the trial's `ingredient`")
    rxcui: str | None = None
    rxcui_source: str | None = None
    drug_class: str
    role: Role
    interaction: Interaction | None = None
    min_daily_dose_mg: float | None = None
    dose_source: str | None = None
    names: tuple[str, ...] = Field(
        default=(), description="extra lowercase names that identify it in free text (salts)"
    )
    brands: tuple[str, ...] = ()
    brand_source: str | None = None
    non_depression_max_daily_mg: float | None = Field(
        default=None,
        description="at or below this daily dose the drug is taken as used for sleep or pain",
    )
    non_depression_source: str | None = None
    notes: str | None = None


class ProductIngredient(_Frozen):
    name: str
    strength_mg: float | None = None


class Product(_Frozen):
    rxcui: str
    display: str
    ingredients: tuple[ProductIngredient, ...]
    source: str
    non_depression_use: str | None = Field(
        default=None, description="why this product is never an antidepressant trial"
    )


class DrugKnowledge(_Frozen):
    version: int
    version_history: tuple[VersionEntry, ...]
    sources: dict[str, str]
    ingredients: tuple[Ingredient, ...]
    products: tuple[Product, ...]


class Code(_Frozen):
    system: str
    code: str
    display: str | None = None
    source: str | None = None


CodeListTarget = Literal[
    "Condition.code",
    "Medication.reasonCode",
    "Medication.statusReason",
    "Observation.code",
    "Observation.value",
    "ServiceRequest.code",
    "Dosage.route",
]


class CodeList(_Frozen):
    description: str
    source: str
    applies_to: CodeListTarget = Field(
        description="the element the list is matched against (the relevance filter reads it)"
    )
    codes: tuple[Code, ...] = ()
    text_patterns: tuple[str, ...] = Field(
        default=(), description="lowercase regular expressions matched against text/display"
    )
    exclude_patterns: tuple[str, ...] = Field(
        default=(),
        description="a text matching one of these never matches the list (negations); codes do",
    )


class CodeKnowledge(_Frozen):
    version: int
    version_history: tuple[VersionEntry, ...]
    sources: dict[str, str]
    lists: dict[str, CodeList]


class Quantity(_Frozen):
    """A threshold: a value with its unit and the source tag that justifies it. Subclasses fix
    the unit, so a threshold given in the wrong unit stops start-up naming it."""

    value: float
    unit: str
    source: str
    note: str | None = None

    def __float__(self) -> float:
        return self.value


class Days(Quantity):
    unit: Literal["days"]

    @property
    def delta(self) -> timedelta:
        return timedelta(days=self.value)


class Weeks(Quantity):
    unit: Literal["weeks"]

    @property
    def delta(self) -> timedelta:
        return timedelta(weeks=self.value)


class Minutes(Quantity):
    unit: Literal["minutes"]


class Years(Quantity):
    unit: Literal["years"]


class Score(Quantity):
    unit: Literal["score"]


class Pressure(Quantity):
    unit: Literal["mmHg"]


class Fraction(Quantity):
    unit: Literal["fraction"]


class Milligrams(Quantity):
    unit: Literal["mg"]


class MgPerKg(Quantity):
    unit: Literal["mg/kg"]


class Count(Quantity):
    unit: Literal[
        "trials", "readings", "doses/day", "sessions/week", "sprays", "times the adequate minimum"
    ]


class Thresholds(_Frozen):
    """Every number and window a rule uses, typed by unit (``policy.json`` "thresholds")."""

    min_adequate_weeks: Weeks
    trd_min_failed_trials: Count
    merge_gap_weeks: Weeks
    switch_window_weeks: Weeks
    default_supply_days: Days
    default_doses_per_day: Count
    episode_lookback_weeks: Weeks
    phq9_baseline_window_days: Days
    phq9_response_reduction: Fraction
    phq9_severe_score: Score
    phq9_moderately_severe_score: Score
    phq9_moderate_score: Score
    phq9_mild_score: Score
    phq9_remission_score: Score
    phq9_recent_days: Days
    phq9_item9_recent_days: Days
    si_recent_days: Days
    self_harm_recent_days: Days
    bp_systolic_limit: Pressure
    bp_diastolic_limit: Pressure
    bp_window_days: Days
    bp_readings_averaged: Count
    order_bp_recent_days: Days
    order_bp_critical_systolic: Pressure
    order_bp_critical_diastolic: Pressure
    order_weight_recent_days: Days
    ketamine_iv_mg_per_kg: MgPerKg
    ketamine_dose_tolerance: Fraction
    ketamine_iv_max_mg_per_kg: MgPerKg
    ketamine_sc_im_max_mg_per_kg: MgPerKg
    ketamine_min_infusion_minutes: Minutes
    rems_monitoring_minutes: Minutes
    post_dose_bp_minutes: Minutes
    esketamine_device_mg: Milligrams
    esketamine_sprays_per_device: Count
    esketamine_first_dose_mg: Milligrams
    esketamine_min_session_mg: Milligrams
    esketamine_max_session_mg: Milligrams
    esketamine_induction_weeks: Weeks
    esketamine_induction_sessions_per_week: Count
    esketamine_maintenance_sessions_per_week: Count
    pregnancy_window_weeks: Weeks
    breastfeeding_window_weeks: Weeks
    adult_age_years: Years
    elderly_age_years: Years
    hypertensive_crisis_recent_days: Days
    recent_cardiac_event_days: Days
    comedication_recent_days: Days
    on_treatment_days: Days
    referral_recent_days: Days
    coverage_grace_days: Days
    combination_overlap_days: Days
    max_order_supply_days: Days
    implausible_dose_multiple: Count
    future_tolerance_days: Days
    max_planned_start_days: Days
    max_record_age_years: Years
    stale_active_weeks: Weeks

    def items(self) -> Iterable[tuple[str, Quantity]]:
        for name in type(self).model_fields:
            yield name, getattr(self, name)


class PlausibleRange(_Frozen):
    """The values an Observation of one code list can take; others are entry errors."""

    low: float
    high: float
    unit: str
    source: str
    note: str | None = None


class AnswerScores(_Frozen):
    """Scores of coded questionnaire answers (e.g. PHQ-9 items answered with LOINC answers)."""

    system: str
    source: str
    note: str | None = None
    scores: dict[str, float]


class PolicyKnowledge(_Frozen):
    version: int
    ruleset_version: str
    version_history: tuple[VersionEntry, ...]
    sources: dict[str, str]
    thresholds: Thresholds
    answer_scores: AnswerScores
    ranges: dict[str, PlausibleRange] = Field(
        default_factory=dict, description="code list name -> plausible values of its readings"
    )
    citations: dict[str, str] = Field(
        description="card source label -> URL of the guideline or label it cites"
    )


REQUIRED_CODE_LISTS: tuple[str, ...] = (
    "depressive-disorder",
    "depression-full-remission",
    "severe-depression",
    "bipolar-depressed",
    "bipolar-manic-or-hypomanic",
    "bipolar-unspecified-phase",
    "bipolar-spectrum",
    "psychosis",
    "suicidal-ideation",
    "suicide-attempt-or-self-harm",
    "hypertensive-crisis",
    "hypertensive-encephalopathy",
    "serious-heart-disease",
    "recent-cardiovascular-event",
    "cardiovascular-condition",
    "hepatic-impairment",
    "aneurysm-or-avm",
    "intracerebral-hemorrhage",
    "intracranial-hemorrhage-other",
    "substance-use-disorder-active",
    "substance-use-disorder-mild",
    "substance-use-disorder-remission",
    "hallucinogen-use-disorder",
    "alcohol-use-disorder-active",
    "pregnancy",
    "breastfeeding",
    "pregnancy-ended",
    "non-depression-indication",
    "depression-indication",
    "phq9-total",
    "phq9-item9",
    "phq9-panel",
    "bp-panel",
    "bp-systolic",
    "bp-diastolic",
    "body-weight",
    "pregnancy-status",
    "pregnant-value",
    "not-pregnant-value",
    "status-reason-intolerance",
    "status-reason-efficacy",
    "status-reason-not-failure",
    "status-reason-remission",
    "route-intravenous",
    "route-intramuscular",
    "route-subcutaneous",
    "route-nasal",
    "ketamine-evaluation-referral",
)


class KnowledgeFileError(KnowledgeBaseError):
    """A knowledge file is missing, not JSON, or does not match its schema."""


@dataclass(frozen=True)
class CompiledCodeList:
    """A code list ready for matching: a set of (system, code) pairs and compiled patterns."""

    name: str
    description: str
    source: str
    codes: frozenset[tuple[str, str]]
    patterns: tuple[re.Pattern[str], ...]
    excludes: tuple[re.Pattern[str], ...]
    applies_to: str

    def matches_code(self, system: str | None, code: str | None) -> bool:
        return system is not None and code is not None and (system, code) in self.codes

    def matches_text(self, text: str | None) -> bool:
        if not text or not self.patterns:
            return False
        lowered = text.lower()
        return any(p.search(lowered) for p in self.patterns) and not any(
            e.search(lowered) for e in self.excludes
        )


@dataclass(frozen=True)
class Knowledge:
    """Everything the rules need, indexed for fast lookup. Built once by ``load_knowledge``."""

    drugs: DrugKnowledge
    codes: CodeKnowledge
    policy: PolicyKnowledge
    ingredients: dict[str, Ingredient]
    ingredient_by_rxcui: dict[str, str]
    products_by_rxcui: dict[str, Product]
    name_pattern: re.Pattern[str]
    name_to_ingredient: dict[str, str]
    lists: dict[str, CompiledCodeList] = field(default_factory=dict)

    @property
    def ruleset_version(self) -> str:
        return self.policy.ruleset_version

    def code_list(self, name: str) -> CompiledCodeList:
        return self.lists[name]

    @property
    def thresholds(self) -> Thresholds:
        return self.policy.thresholds

    def with_thresholds(self, **values: float) -> Knowledge:
        """This knowledge with some threshold values replaced (an operator's setting). The
        rule-set version then says so ("2026.11.2+episode_lookback_weeks=52"), so that the
        version on a card always identifies the logic that produced it."""
        if not values:
            return self
        changed = {
            name: getattr(self.thresholds, name).model_copy(update={"value": value})
            for name, value in values.items()
        }
        suffix = ",".join(f"{name}={value:g}" for name, value in sorted(values.items()))
        policy = self.policy.model_copy(
            update={
                "thresholds": self.thresholds.model_copy(update=changed),
                "ruleset_version": f"{self.policy.ruleset_version}+{suffix}",
            }
        )
        return replace(self, policy=policy)


def _read(path: Path) -> object:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise KnowledgeFileError(f"knowledge file {path} is missing") from exc
    except json.JSONDecodeError as exc:
        raise KnowledgeFileError(f"knowledge file {path} is not valid JSON: {exc}") from exc


def _parse(model: type[M], path: Path) -> M:
    try:
        return model.model_validate(_read(path))
    except ValidationError as exc:
        raise KnowledgeFileError(f"knowledge file {path} is invalid: {exc}") from exc


def _compile_list(name: str, code_list: CodeList) -> CompiledCodeList:
    codes = frozenset((SYSTEM_ALIASES.get(c.system, c.system), c.code) for c in code_list.codes)
    try:
        patterns = tuple(re.compile(p) for p in code_list.text_patterns)
        excludes = tuple(re.compile(p) for p in code_list.exclude_patterns)
    except re.error as exc:
        raise KnowledgeFileError(f"code list {name!r} has a bad text pattern: {exc}") from exc
    return CompiledCodeList(
        name,
        code_list.description,
        code_list.source,
        codes,
        patterns,
        excludes,
        code_list.applies_to,
    )


def _name_index(ingredients: Iterable[Ingredient]) -> dict[str, str]:
    index: dict[str, str] = {}
    for ing in ingredients:
        for name in (ing.name, *ing.names, *ing.brands):
            index[name.lower()] = ing.name
    return index


class _Checked(BaseModel):
    """Cross-file checks that a schema alone cannot express."""

    drugs: DrugKnowledge
    codes: CodeKnowledge
    policy: PolicyKnowledge

    @model_validator(mode="after")
    def _consistent(self) -> _Checked:
        missing_lists = [n for n in REQUIRED_CODE_LISTS if n not in self.codes.lists]
        if missing_lists:
            raise ValueError(f"codes.json lacks code lists {missing_lists}")
        names = {i.name for i in self.drugs.ingredients}
        for product in self.drugs.products:
            unknown = [pi.name for pi in product.ingredients if pi.name not in names]
            if unknown:
                raise ValueError(f"drugs.json product {product.rxcui} names unknown {unknown}")
        for ing in self.drugs.ingredients:
            if ing.role == "antidepressant" and ing.min_daily_dose_mg is not None:
                if not ing.dose_source:
                    raise ValueError(f"drugs.json ingredient {ing.name} has a dose but no source")
        for tag_owner, sources, used in (
            ("drugs.json", self.drugs.sources, _drug_source_tags(self.drugs)),
            ("codes.json", self.codes.sources, _code_source_tags(self.codes)),
            (
                "policy.json",
                self.policy.sources,
                {t.source for _, t in self.policy.thresholds.items()}
                | {r.source for r in self.policy.ranges.values()}
                | {self.policy.answer_scores.source},
            ),
        ):
            undefined = sorted(_tags(used) - set(sources))
            if undefined:
                raise ValueError(f"{tag_owner} cites undefined source tags {undefined}")
        return self


def _tags(values: Iterable[str | None]) -> set[str]:
    """Source fields may cite several tags, separated by ';'; a tag may carry ':detail'."""
    tags: set[str] = set()
    for value in values:
        if not value:
            continue
        for part in value.split(";"):
            tags.add(part.strip().split(":", 1)[0].strip())
    return tags


def _drug_source_tags(drugs: DrugKnowledge) -> list[str | None]:
    out: list[str | None] = []
    for ing in drugs.ingredients:
        out += [ing.rxcui_source, ing.dose_source, ing.non_depression_source, ing.brand_source]
    out += [p.source for p in drugs.products]
    return out


def _code_source_tags(codes: CodeKnowledge) -> list[str | None]:
    out: list[str | None] = []
    for code_list in codes.lists.values():
        out.append(code_list.source)
        out += [c.source for c in code_list.codes]
    return out


def load_knowledge(directory: Path = KNOWLEDGE_DIR) -> Knowledge:
    """Load, validate and index the knowledge files. Raises ``KnowledgeFileError``."""
    drugs = _parse(DrugKnowledge, directory / "drugs.json")
    codes = _parse(CodeKnowledge, directory / "codes.json")
    policy = _parse(PolicyKnowledge, directory / "policy.json")
    try:
        _Checked(drugs=drugs, codes=codes, policy=policy)
    except ValidationError as exc:
        raise KnowledgeFileError(f"knowledge files in {directory} disagree: {exc}") from exc
    ingredients = {i.name: i for i in drugs.ingredients}
    name_to_ingredient = _name_index(drugs.ingredients)
    # Longest names first so that "desvenlafaxine" wins over "venlafaxine".
    alternatives = sorted(name_to_ingredient, key=len, reverse=True)
    name_pattern = re.compile(r"\b(" + "|".join(re.escape(n) for n in alternatives) + r")\b")
    return Knowledge(
        drugs=drugs,
        codes=codes,
        policy=policy,
        ingredients=ingredients,
        ingredient_by_rxcui={i.rxcui: i.name for i in drugs.ingredients if i.rxcui},
        products_by_rxcui={p.rxcui: p for p in drugs.products},
        name_pattern=name_pattern,
        name_to_ingredient=name_to_ingredient,
        lists={name: _compile_list(name, cl) for name, cl in codes.lists.items()},
    )


@cache
def default_knowledge() -> Knowledge:
    """The packaged knowledge, loaded once per process."""
    return load_knowledge()

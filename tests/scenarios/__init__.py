"""Clinical scenarios: a patient's FHIR resources and what each hook must answer.

Each scenario is built fresh (new resource ids) by a function, with dates relative to the frozen
clock. Used by tests/service/test_scenarios.py in both modes (full prefetch; no prefetch against a
FHIR server with paging), by the integration tests against a real FHIR server, and by
``scripts/make_example_patients.py`` for the example patients.

- ``core``: the service's own scenarios, one per rule, contraindication and hook;
- ``review``: every case of the outside clinical review of rule set 2026.11.1
  (``docs/clinical-review-2026-11.md`` in the shared docs), with the answer the fix gives;
- ``in_progress``: treatment and referrals already under way (no card a clinician acted on).
"""

from tests.scenarios.core import CORE
from tests.scenarios.in_progress import IN_PROGRESS
from tests.scenarios.model import (
    SERTRALINE_100,
    Expect,
    Scenario,
    trd_history,
    trd_patient,
)
from tests.scenarios.review import REVIEW

SCENARIOS: list[Scenario] = [*CORE, *REVIEW, *IN_PROGRESS]

__all__ = ["SCENARIOS", "SERTRALINE_100", "Expect", "Scenario", "trd_history", "trd_patient"]

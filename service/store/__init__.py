"""The shared store: JWT replay protection, the card log and card feedback, for every worker and
replica. ``Store`` (repository.py) is its only door; records.py builds what goes in, without
patient data; migrate.py and migrations/ own the schema (Alembic); cardlog.py writes the card log
in the background. See the README's "Operations" section."""

from service.store.engine import quiet_driver_logs
from service.store.migrate import RevisionState, StoreNotMigrated
from service.store.repository import PurgeCounts, ReportRows, Store

__all__ = [
    "PurgeCounts",
    "ReportRows",
    "RevisionState",
    "Store",
    "StoreNotMigrated",
    "quiet_driver_logs",
]

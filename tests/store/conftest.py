"""The store tests run on each backend: ``store_url`` is parametrised (sqlite, postgresql)."""

from tests.store.support import (  # noqa: F401  (fixtures, registered by their names)
    backend,
    postgres_database,
    store_url,
)

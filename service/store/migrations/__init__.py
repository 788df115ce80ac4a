"""Alembic migrations of the store, shipped inside the package (``ketamine-cds db upgrade``)."""

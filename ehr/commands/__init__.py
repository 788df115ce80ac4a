"""The ``ketamine-cds`` subcommands: each module adds its own with ``register(subparsers)``."""

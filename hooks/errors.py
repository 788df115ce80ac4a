"""Errors raised by the hook layer (no HTTP knowledge here; ``service.errors`` maps them).

KnowledgeBaseError   the clinical knowledge files are missing or invalid (start-up fails)
HookContextError     the request context does not fit the hook (e.g. no draftOrders Bundle)
"""


class KnowledgeBaseError(Exception):
    """The clinical knowledge could not be loaded; the service must not start."""


class HookContextError(ValueError):
    """The hook's context is malformed in a way the hook cannot work around."""

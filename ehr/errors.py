"""The EHR side's one error: a problem the user can fix."""


class EhrError(Exception):
    """A problem the user can fix; the message says what (the command line shows no traceback)."""

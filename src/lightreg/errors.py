"""User-facing errors: bad input that should stop a run with one clear line, not a traceback."""


class UserError(ValueError):
    """A problem with the user's configuration or data; the CLI prints the message and exits non-zero."""

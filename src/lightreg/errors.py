"""User-facing errors: bad input that should stop a run with one clear line, not a traceback."""

import sys
from collections.abc import Sequence

EXIT_USER_ERROR = 2
"""The exit code of every lightreg command stopped by a :class:`UserError` (argparse uses 2 for bad arguments too)."""


SHOWN_NAMES = 10
"""How many names a message lists before ``... (N more)``."""


def listed(names: Sequence[object], limit: int = SHOWN_NAMES) -> str:
    """``a, b, c``: the first ``limit`` names, then ``... (N more)``, so that a message never lists 3 000 column
    names on one line."""
    shown = ", ".join(map(str, names[:limit]))
    return shown + (f", ... ({len(names) - limit} more)" if len(names) > limit else "")


class UserError(ValueError):
    """A problem with the user's configuration or data; the CLI prints the message and exits non-zero."""


class LightregWarning(UserWarning):
    """Something that trains, but probably not as intended (no regularization, λ too large, ...)."""


def warn(message: str) -> None:
    """Emit a :class:`LightregWarning` once, on global rank zero only."""
    from lightning.pytorch.utilities import rank_zero_warn

    rank_zero_warn(message, category=LightregWarning)


def report_user_error(exc: BaseException, context: str = "") -> int:
    """Print ``exc`` as the one line ``lightreg: error: [context: ]message`` on stderr (line breaks inside the message
    become spaces) and return :data:`EXIT_USER_ERROR`. Every command (``python -m train``, ``lightreg``,
    ``python -m lightreg.compact``, a sweep's failed job) reports user errors through this function."""
    message = " ".join(str(exc).split())
    print(f"lightreg: error: {context + ': ' if context else ''}{message}", file=sys.stderr)
    return EXIT_USER_ERROR

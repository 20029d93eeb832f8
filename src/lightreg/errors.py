"""User-facing errors: bad input that should stop a run with one clear line, not a traceback."""


class UserError(ValueError):
    """A problem with the user's configuration or data; the CLI prints the message and exits non-zero."""


class LightregWarning(UserWarning):
    """Something that trains, but probably not as intended (no regularization, λ too large, ...)."""


def warn(message: str) -> None:
    """Emit a :class:`LightregWarning` once, on global rank zero only."""
    from lightning.pytorch.utilities import rank_zero_warn

    rank_zero_warn(message, category=LightregWarning)

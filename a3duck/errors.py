"""The user-facing error types: the CLI prints their message (one clear line) and exits 1."""

from a3duck.config import ConfigError
from a3duck.data import DataError
from a3duck.models import ModelError


class A3DuckError(RuntimeError):
    """Base for errors of later pipeline stages (evaluation, card, hub, demo)."""


USER_ERRORS: tuple[type[BaseException], ...] = (
    ConfigError, DataError, ModelError, A3DuckError, FileNotFoundError,
)

"""The core's user-facing error types and ``USER_ERRORS`` (what every entry point prints as one
line). Each product adds its own :class:`A3DuckError` subclasses beside its code (``EvalError``,
``BenchmarkDataError``, ``ContaminationError``, ``CardError``, ``HubError``). This module
imports nothing, so anything that only wants to raise or catch an a3duck error stays light. The
CLI prints their message (one clear line, no traceback unless -v) and exits 2, the usual code
for a usage error."""


class A3DuckError(RuntimeError):
    """Base of every error whose message tells the user what to fix."""


class ConfigError(A3DuckError, ValueError):
    """A recipe or override that cannot be used; the message names every field to fix."""


class DataError(A3DuckError, ValueError):
    """Data that cannot be trained on; the message says what is wrong and where."""


class ModelError(A3DuckError):
    """A base model or adapter that cannot be used; the message says what to fix."""


class AdapterMismatchError(ModelError):
    """The adapter was trained for a different base model."""


class TrainingError(A3DuckError):
    """Training could not continue (e.g. a non-finite loss); the message says what to change."""


class InputError(A3DuckError):
    """A request (a Space visitor's, an API call's) that cannot run as given; the message says
    what to change."""


USER_ERRORS: tuple[type[BaseException], ...] = (A3DuckError, FileNotFoundError)

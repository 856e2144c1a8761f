"""One validation pass over a run's settings: every problem named with its field, at once.

Values are coerced the way a YAML or command-line user means them, driven by the field's type
annotation (PyYAML reads ``4e-4`` as a string: it is a float here; ``"8"`` from a flag is an int;
``true``/``no`` are booleans; ``q_proj,v_proj`` is a list). Then the values are checked against
what a run can use (positive learning rate, batch sizes that divide, a known template and
scheduler, ...). Nothing here touches a model, data or the file system.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Mapping
from typing import Any, Literal, Union, get_args, get_origin

Problem = tuple[str, str]  # (field, what is wrong)

TRUE = {"true", "yes", "on", "1"}
FALSE = {"false", "no", "off", "0"}
DEVICE_RE = re.compile(r"^(auto|cpu|cuda|mps)$")
MAX_SEED = 2**32 - 1  # numpy's seed range (transformers.set_seed seeds numpy too)
# Choice fields that also take a boolean (YAML ``compile: true``): (value for false, for true).
BOOLEAN_CHOICES = {"compile": ("never", "always")}


def coerce(value: Any, annotation: Any) -> Any:
    """``value`` converted to ``annotation``; ValueError saying what was expected otherwise."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        for option in args:
            try:
                return coerce(value, option)
            except ValueError:
                continue
        raise ValueError(f"expected {describe(annotation)}, got {value!r}")
    if annotation is type(None):
        if value is None:
            return None
        raise ValueError(f"expected null, got {value!r}")
    if origin is Literal:
        if value in args:
            return value
        raise ValueError(f"must be one of {', '.join(map(str, args))}; got {value!r}")
    if origin is list:
        return _coerce_list(value, args[0] if args else Any)
    if origin is dict or annotation is dict:
        if isinstance(value, Mapping):
            return dict(value)
        raise ValueError(f"expected a mapping, got {value!r}")
    scalar = _SCALARS.get(annotation)
    return value if scalar is None else scalar(value)


def _coerce_list(value: Any, item: Any) -> list:
    if isinstance(value, str):  # "q_proj,v_proj" from a flag or a YAML scalar
        value = [part.strip() for part in value.split(",") if part.strip()]
    if isinstance(value, (list, tuple)):
        return [coerce(v, item) for v in value]
    raise ValueError(f"expected a list, got {value!r}")


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in TRUE | FALSE:
        return value.strip().lower() in TRUE
    raise ValueError(f"expected true or false, got {value!r}")


def _is_boolean(value: Any) -> bool:
    return isinstance(value, bool) or (isinstance(value, str)
                                       and value.strip().lower() in TRUE | FALSE)


def _to_int(value: Any) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, str):
        try:
            return int(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a whole number, got {value!r}")


def _to_float(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, str):  # PyYAML reads 4e-4 (no dot) as a string
        try:
            return float(value.strip())
        except ValueError:
            pass
    raise ValueError(f"expected a number, got {value!r}")


def _to_str(value: Any) -> str:
    if isinstance(value, str):
        return value
    raise ValueError(f"expected text, got {value!r} (quote it in YAML)")


_SCALARS = {bool: _to_bool, int: _to_int, float: _to_float, str: _to_str}


def describe(annotation: Any) -> str:
    """A reader's name for a type: 'a number', 'text or a list of mappings', ..."""
    origin, args = get_origin(annotation), get_args(annotation)
    if origin in (Union, types.UnionType):
        return " or ".join(describe(a) for a in args)
    if origin is Literal:
        return "one of " + ", ".join(map(str, args))
    if origin is list:
        item = describe(args[0]) if args else "value"
        return f"a list of {item.removeprefix('a ')}s" if item[:2] in ("a ", "te") else "a list"
    names = {bool: "true or false", int: "a whole number", float: "a number", str: "text",
             type(None): "null", dict: "a mapping"}
    return names.get(annotation, "a mapping" if origin is dict else str(annotation))


def coerce_all(raw: Mapping[str, Any], hints: Mapping[str, Any]) -> tuple[dict, list[Problem]]:
    """Coerce every known key; unknown keys and wrong types become problems."""
    values: dict[str, Any] = {}
    problems: list[Problem] = []
    for key, value in raw.items():
        if key not in hints:
            close = difflib.get_close_matches(str(key), list(hints), n=1)
            hint = f"did you mean {close[0]}?" if close else f"known: {', '.join(hints)}"
            problems.append((str(key), f"unknown field; {hint}"))
            continue
        if key in BOOLEAN_CHOICES and _is_boolean(value):
            value = BOOLEAN_CHOICES[key][_to_bool(value)]
        try:
            values[key] = coerce(value, hints[key])
        except ValueError as exc:
            problems.append((key, str(exc)))
    return values, problems


def value_problems(v: Mapping[str, Any], skip: set[str] = frozenset()) -> list[Problem]:
    """What a run cannot use in already-typed values; fields in ``skip`` (wrong type) are not
    checked again."""
    checks = [
        ("learning_rate", _positive_finite), ("num_epochs", _epochs),
        ("weight_decay", _non_negative_finite), ("max_grad_norm", _non_negative_finite),
        ("max_steps", _steps), ("batch_size", _at_least(1)), ("micro_batch_size", _at_least(1)),
        ("cutoff_len", _at_least(8, "tokens")), ("warmup_steps", _at_least(0)),
        ("logging_steps", _at_least(1)), ("save_steps", _at_least(1)),
        ("save_total_limit", _at_least(1)), ("seed", _seed), ("device", _device),
        ("prompt_template", _template), ("lr_scheduler", _scheduler),
        ("target_modules", _module_names), ("feedforward_modules", _module_names),
        ("beta", _positive_finite), ("max_prompt_len", _at_least(0, "tokens")),
        ("max_completion_len", _at_least(0, "tokens")), ("init_adapter_sha256", _sha256),
    ]
    problems = [(name, msg) for name, check in checks
                if name in v and name not in skip and (msg := check(v[name]))]
    named = skip | {name for name, _ in problems}
    problems += [p for p in _generic_problems(v) if p[0] not in named]
    unchecked = skip | {name for name, _ in problems}
    if not {"batch_size", "micro_batch_size"} & unchecked:
        batch, micro = v["batch_size"], v["micro_batch_size"]
        if batch % micro:
            why = f"must be a multiple of micro_batch_size ({batch} is not a multiple of {micro})"
            problems.append(("batch_size", why))
    if "data" in v and not {"data", "data_split"} & skip:
        problems += _data_problems(v)
    return problems + _preference_problems(v)


def _preference_problems(v: Mapping[str, Any]) -> list[Problem]:
    """What method dpo needs of the other settings (a3duck.dpo)."""
    problems = []
    if v.get("reference") == "init_adapter" and not v.get("init_adapter"):
        problems.append(("reference", ("init_adapter needs --init-adapter (the adapter to start "
                                      "from and compare with)")))
    if v.get("method") == "dpo" and v.get("streaming"):
        problems.append(("streaming", "not supported with method dpo (pairs are read whole)"))
    if v.get("init_adapter_sha256") and not v.get("init_adapter"):
        problems.append(("init_adapter_sha256", "set without init_adapter"))
    return problems


def _sha256(x: str | None) -> str | None:
    if x is None or re.fullmatch(r"[0-9a-f]{64}", x):
        return None
    return f"must be 64 lowercase hex digits (a sha256), got {x!r}"


def _data_problems(v: Mapping[str, Any]) -> list[Problem]:
    """The sources of ``data`` (a string or a list of source mappings), and what streaming
    needs of them."""
    from a3duck.sources import parse_sources, source_problems

    found = source_problems(v["data"], v.get("data_split", "train"))
    problems = [("data", msg.removeprefix("data: ").removeprefix("data ")) for msg in found]
    if found or not v.get("streaming") or "streaming" not in v:
        return problems
    if v.get("max_steps", -1) < 1:
        why = "needs max_steps (a stream has no length to count epochs over)"
        problems.append(("streaming", why))
    sources = parse_sources(v["data"], v.get("data_split", "train"))
    if len(sources) > 1 and sources[0].weight is None:
        why = ("a streamed mixture needs a weight for every source (epochs cannot be counted "
               "on a stream)")
        problems.append(("streaming", why))
    return problems


# Text fields that name a place or a thing: an empty string would silently mean "here".
NAMED_FIELDS = ("base_model", "data", "data_split", "output_dir")


def _generic_problems(v: Mapping[str, Any]) -> list[Problem]:
    """The rules every field of its kind follows: numbers finite and within MAX_COUNT
    (a3duck.limits), names and paths not empty."""
    from a3duck.limits import MAX_COUNT, number_problem

    problems = []
    for name, value in v.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and name != "seed":
            msg = number_problem(value, low=-MAX_COUNT, high=MAX_COUNT)
            if msg:
                problems.append((name, msg))
        elif name in NAMED_FIELDS and isinstance(value, str) and not value.strip():
            problems.append((name, "must not be empty (give a file, folder or Hub id)"))
    return problems


def _positive_finite(x: float) -> str | None:
    from a3duck.limits import number_problem

    return number_problem(x, low=0, above=True)


def _epochs(x: float) -> str | None:
    from a3duck.limits import MAX_EPOCHS, number_problem

    return number_problem(x, low=0, above=True, high=MAX_EPOCHS)


def _non_negative_finite(x: float) -> str | None:
    from a3duck.limits import number_problem

    return number_problem(x, low=0)


def _at_least(low: int, unit: str = ""):
    def check(x: int) -> str | None:
        return f"must be >= {low}{' ' + unit if unit else ''}, got {x}" if x < low else None
    return check


def _steps(x: int) -> str | None:
    if x == -1 or x >= 1:
        return None
    return f"must be -1 (train num_epochs) or a positive number of steps, got {x}"


def _seed(x: int) -> str | None:
    return None if 0 <= x <= MAX_SEED else f"must be between 0 and {MAX_SEED}, got {x}"


def _device(x: str) -> str | None:
    if DEVICE_RE.match(x):
        return None
    return f"must be auto, cpu, cuda or mps; got {x!r}"


def _template(name: str) -> str | None:
    from a3duck.prompts import TEMPLATE_NAMES

    if name in TEMPLATE_NAMES:
        return None
    return f"unknown prompt template {name!r}; known: {', '.join(TEMPLATE_NAMES)}"


def _scheduler(name: str) -> str | None:
    from transformers.trainer_utils import SchedulerType  # the names the Trainer accepts

    known = [s.value for s in SchedulerType]
    return None if name in known else f"unknown lr scheduler {name!r}; known: {', '.join(known)}"


def _module_names(names: list[str] | None) -> str | None:
    if names is None or (names and all(n.strip() for n in names)):
        return None
    return "must be null (PEFT's defaults) or a non-empty list of module names"


def format_problems(source: str, problems: list[Problem], flags: set[str] = frozenset()) -> str:
    """One message naming every problem; fields given on the command line show their flag."""
    def label(name: str) -> str:
        return f"{name} (--{name.replace('_', '-')})" if name in flags else name

    lines = [f"  - {label(name)}: {msg}" for name, msg in problems]
    count = "1 problem" if len(problems) == 1 else f"{len(problems)} problems"
    return f"{source}: {count}\n" + "\n".join(lines)

"""`a3duck train`: train an IA3 adapter from a YAML recipe plus command-line overrides.

Every TrainConfig field is a flag, generated from the dataclass (recipe key ``warmup_steps`` is
``--warmup-steps``; booleans get ``--x/--no-x``; the help is the field's reason), so a new field
needs no edit here. Values are checked together with the recipe by :func:`a3duck.config.resolve`.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Literal, get_args, get_origin

from a3duck.config import TrainConfig, field_types, resolve


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipe", help="YAML recipe of TrainConfig fields (defaults: the "
                        "published A3Duck recipe), e.g. recipes/smollm2-demo.yaml")
    parser.add_argument("--resume", action="store_true",
                        help="continue from the last checkpoint in OUTPUT_DIR/checkpoints")
    group = parser.add_argument_group(
        "run settings", "every TrainConfig field (docs/configuration.md); a flag overrides the "
        "recipe, which overrides the default shown")
    add_config_flags(group)
    quant = parser.add_argument_group("quantised base (aliases of --quantization)")
    quant.add_argument("--load-in-4bit", dest="quantization", action="store_const", const="4bit",
                       help="load the frozen base in 4-bit NF4 (bitsandbytes, CUDA only)")
    quant.add_argument("--load-in-8bit", dest="quantization", action="store_const", const="8bit",
                       help="load the frozen base in 8-bit (bitsandbytes, CUDA only)")


def add_config_flags(parser) -> None:
    """One flag per TrainConfig field; None means 'not given' (the recipe's value stays)."""
    types = field_types()
    for f in fields(TrainConfig):
        kind = types[f.name]
        options: dict = {"dest": f.name, "default": None,
                         "help": f"{f.metadata.get('why', '')} (default: {f.default!r})"
                         .replace("%", "%%")}
        if kind is bool:
            options["action"] = argparse.BooleanOptionalAction
        elif _is_list(kind):
            options.update(nargs="+", metavar="NAME")
        elif get_origin(kind) is Literal:
            options["metavar"] = "{" + ",".join(get_args(kind)) + "}"
        else:
            options["metavar"] = f.name.upper()
        parser.add_argument("--" + f.name.replace("_", "-"), **options)


def _is_list(kind) -> bool:
    """A list (or an optional list) of names: several values after the flag. A field that also
    takes text (e.g. one data source or several) stays a single value on the command line."""
    options = [a for a in (get_args(kind) or (kind,)) if a is not type(None)]
    return bool(options) and all(get_origin(a) is list for a in options) \
        if get_origin(kind) is not list else True


def run(args: argparse.Namespace) -> int:
    config = resolve(args.recipe, {f.name: getattr(args, f.name) for f in fields(TrainConfig)})
    from a3duck.train import train  # after validation: training imports the ML stack

    print(train(config, resume=args.resume))
    return 0

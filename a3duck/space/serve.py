"""`a3duck serve` and app.py (the Space's entry point): the flags and the start of the Gradio
Space (`a3duck serve` is :mod:`a3duck.commands.serve`, which reuses this module)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--base-model", help="base model: Hub id or local folder (env "
                        "A3DUCK_BASE_MODEL; default: the adapter's recorded base, else "
                        "meta-llama/Llama-2-13b-hf on a GPU Space, else the embedded SmolLM2)")
    parser.add_argument("--adapter", action="append", metavar="[NAME=]PATH_OR_ID",
                        help="IA3 adapter: Hub id or local folder, 'none' for the base alone; "
                        "repeat to serve several on one base (env A3DUCK_ADAPTER, a comma list; "
                        "default DopeorNope/A3_duck on a GPU Space, else none)")
    parser.add_argument("--revision", help="adapter revision (branch, tag or commit) on the Hub")
    parser.add_argument("--device", default=None, help="cpu, cuda, cuda:1, ... (default: auto)")
    parser.add_argument("--dtype", choices=["auto", "bf16", "fp32"], default=None,
                        help="weights precision (default auto: bf16 on GPUs that support it)")
    parser.add_argument("--merge", action="store_true", default=None,
                        help="fold the (one) adapter into the weights for speed (disables "
                        "Compare)")
    parser.add_argument("--host", default=None, help="address to listen on (env "
                        "GRADIO_SERVER_NAME; default 127.0.0.1; 0.0.0.0 for all interfaces)")
    parser.add_argument("--port", type=int, default=None,
                        help="port (env GRADIO_SERVER_PORT; default 7860)")
    parser.add_argument("--queue-size", type=int, default=None,
                        help="visitors that may wait in the queue (default 64)")
    parser.add_argument("--concurrency", type=int, default=None,
                        help="requests served at once, decoded together in mixed batches "
                        "(default 8)")
    parser.add_argument("--mcp", action="store_true", default=None,
                        help="also serve chat, few-shot scoring and compare as MCP tools "
                        "(env A3DUCK_MCP=1; endpoint /gradio_api/mcp/)")


def config_from_args(args: argparse.Namespace, config_file=None):
    """The ServeConfig of these flags (environment, the Space's config file and defaults fill
    the rest)."""
    from a3duck.space.runtime import ServeConfig

    return ServeConfig.resolve(
        config_file, mcp=args.mcp, base_model=args.base_model, revision=args.revision,
        adapter=",".join(args.adapter) if args.adapter else None,
        device=args.device, dtype=args.dtype, merge=args.merge, host=args.host,
        port=args.port, queue_size=args.queue_size, concurrency=args.concurrency)


def run(args: argparse.Namespace) -> int:
    from a3duck.space.ui import launch

    config_file = getattr(args, "config_file", None)
    launch(config_from_args(args, config_file), banner_on_error=config_file is not None)
    return 0


def main(argv: list[str] | None = None, space_dir=None) -> int:
    """Entry point of app.py (a Space, or `python app.py --port 7861` locally); ``space_dir``
    holds app.py and the Space's config file. Started this way, a model that cannot be loaded
    is explained on the page instead of stopping the app."""
    from a3duck.entry import invoke
    from a3duck.hub_defaults import SPACE_CONFIG_FILE
    from a3duck.space.ui import TITLE

    config_file = Path(space_dir) / SPACE_CONFIG_FILE if space_dir else None
    return invoke(sys.modules[__name__], sys.argv[1:] if argv is None else argv,
                  prog="app.py", description=TITLE, defaults={"config_file": config_file})

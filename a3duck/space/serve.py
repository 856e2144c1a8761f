"""`a3duck serve` and app.py (the Space's entry point): the flags and the start of the Gradio
Space (`a3duck serve` is :mod:`a3duck.commands.serve`, which reuses this module)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from a3duck.limits import MAX_COUNT, flag


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
    parser.add_argument("--port", type=flag(low=1, high=65535), default=None,
                        help="port (env GRADIO_SERVER_PORT; default 7860)")
    parser.add_argument("--queue-size", type=flag(low=1, high=MAX_COUNT), default=None,
                        help="visitors that may wait in the queue (default 64)")
    parser.add_argument("--concurrency", type=flag(low=1, high=MAX_COUNT), default=None,
                        help="requests served at once, their answers decoded together by the "
                        "engine (default 8)")
    parser.add_argument("--api-key", default=None,
                        help="require 'Authorization: Bearer KEY' on the OpenAI API at /v1 and "
                        "enable its admin routes (env A3DUCK_API_KEY; default: open, no admin)")
    parser.add_argument("--adapters", metavar="DIR", default=None,
                        help="serve every sub-folder of DIR that holds an adapter, named after "
                        "the sub-folder, loaded on first use")
    parser.add_argument("--max-adapters", type=int, default=None, metavar="N",
                        help="hold at most N --adapters adapters in memory, least recently used "
                        "evicted and reloaded on use (default: no cap; each is its IA3 vectors)")
    parser.add_argument("--pin", action="append", default=None, metavar="NAME",
                        help="never evict adapter NAME (repeatable)")
    parser.add_argument("--max-batch", type=int, default=None,
                        help="answers decoded together at most by the engine (the Space's "
                        "and /v1's; default 16)")
    parser.add_argument("--max-queue", type=int, default=None,
                        help="/v1 requests that may wait beyond those running before 429 "
                        "(default 64)")
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


def api_config_from_args(args: argparse.Namespace):
    """The ApiConfig (OpenAI API at /v1, adapter store) of these flags."""
    from a3duck.serving.service import ApiConfig

    return ApiConfig.resolve(
        api_key=getattr(args, "api_key", None), adapters_dir=getattr(args, "adapters", None),
        max_adapters=getattr(args, "max_adapters", None),
        pins=tuple(getattr(args, "pin", None) or ()) or None,
        max_batch=getattr(args, "max_batch", None), max_queue=getattr(args, "max_queue", None))


def run(args: argparse.Namespace) -> int:
    from a3duck.space.runtime import on_space
    from a3duck.space.ui import launch

    config_file = getattr(args, "config_file", None)
    # On a Space, a model that cannot load is explained on the page (its visitors and owner
    # see no terminal); locally (`a3duck serve`, `python app.py`) it is one message, exit 2.
    launch(config_from_args(args, config_file), banner_on_error=config_file is not None
           and on_space(), api=api_config_from_args(args))
    return 0


def main(argv: list[str] | None = None, space_dir=None) -> int:
    """Entry point of app.py (a Space, or `python app.py --port 7861` locally); ``space_dir``
    holds app.py and the Space's config file. Started this way on a Space, a model that cannot
    be loaded is explained on the page instead of stopping the app."""
    from a3duck.entry import invoke
    from a3duck.hub_defaults import SPACE_CONFIG_FILE
    from a3duck.space.ui import TITLE

    config_file = Path(space_dir) / SPACE_CONFIG_FILE if space_dir else None
    return invoke(sys.modules[__name__], sys.argv[1:] if argv is None else argv,
                  prog="app.py", description=TITLE, defaults={"config_file": config_file})

"""`a3duck space push`: publish the Gradio app as a Hugging Face Space (a3duck.publish.space_repo)."""

from __future__ import annotations

import argparse

from a3duck.hub_defaults import SPACE_ADAPTER, SPACE_BASE_MODEL


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from a3duck.commands.push import add_upload_arguments
    from a3duck.publish.space_repo import ZERO_GPU

    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    push = sub.add_parser("push", help="stage, check and upload the Space in one commit")
    push.add_argument("--space-id", required=True, help="the Space, OWNER/NAME")
    push.add_argument("--base-model", default=SPACE_BASE_MODEL,
                      help=f"base model Hub id (default {SPACE_BASE_MODEL})")
    push.add_argument("--adapter", action="append", dest="adapters", default=None,
                      help=f"adapter Hub id; repeat for several (default {SPACE_ADAPTER})")
    push.add_argument("--revision", default=None,
                      help="adapter revision (branch, tag or commit) the Space loads")
    push.add_argument("--hardware", default=ZERO_GPU,
                      help=f"suggested hardware: {ZERO_GPU} (ZeroGPU, default), a100-large, "
                      "l4x1, t4-medium, cpu-basic, ... (the Space's front matter fits it)")
    push.add_argument("--no-mcp", dest="mcp", action="store_false",
                      help="do not serve the endpoints as MCP tools")
    add_upload_arguments(push, "Update Space with a3duck")


def run(args) -> int:
    import os

    from huggingface_hub import HfApi

    from a3duck.publish import space_repo as sr
    from a3duck.publish.hub import require_token, staging_folder, upload

    spec = sr.SpaceSpec(space_id=args.space_id, base_model=args.base_model,
                        adapters=args.adapters or [SPACE_ADAPTER], revision=args.revision,
                        hardware=args.hardware, mcp=args.mcp)
    spec.check()  # before anything is staged or sent
    print(sr.load_line(spec, defaults=not args.adapters and args.base_model == SPACE_BASE_MODEL))
    token = api = None
    if not args.dry_run:
        token = require_token()  # before any network call: a missing token sends nothing
        api = HfApi(endpoint=os.environ.get("HF_ENDPOINT") or None, token=token)
    with staging_folder(args.staging_dir) as out:
        _, notes = sr.stage_space(spec, out, api)
        sr.check_space(out, spec, token)
        print(sr.describe_space(out, notes))
        if args.dry_run:
            print("dry run: nothing was uploaded"
                  + ("" if args.staging_dir else " (the temporary staging folder was removed)"))
            return 0
        url = upload(out, spec.space_id, token, private=args.private,
                     commit_message=args.commit_message, retries=args.retries,
                     repo_type="space", space_sdk="gradio", delete_patterns="*")
    print(f"uploaded in one commit: {url}")
    return 0

"""`a3duck push` (and push_to_hub.py): stage, check and upload an adapter folder to the Hub."""

from __future__ import annotations

import argparse
from pathlib import Path

from a3duck.limits import flag
from a3duck.publish import DEFAULT_REPO_ID
from a3duck.publish.card import LANGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter-dir", "--adapter", dest="adapter_dir", required=True,
                        help="adapter folder written by `a3duck train`")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID,
                        help=f"Hub repo to upload to (default {DEFAULT_REPO_ID})")
    parser.add_argument("--revision", default=None,
                        help="branch to commit to (created from main if missing; default main)")
    parser.add_argument("--create-pr", action="store_true",
                        help="open a pull request with the commit instead of committing directly")
    parser.add_argument("--include-merged", action="store_true",
                        help="also upload the adapter merged into its base, under merged/ "
                             "(downloads the base; as large as the base model)")
    parser.add_argument("--lang", choices=LANGS, default="en",
                        help="language of the card when push has to render it")
    parser.add_argument("--overwrite-readme", action="store_true",
                        help="upload a3duck's card even where the folder's README.md is "
                        "hand-written (default: a hand-written README is uploaded as it is)")
    add_upload_arguments(parser, "Upload IA3 adapter with a3duck")


def add_upload_arguments(parser: argparse.ArgumentParser, commit_message: str) -> None:
    """The flags every upload shares (`a3duck push`, `a3duck space push`)."""
    parser.add_argument("--private", action="store_true",
                        help="create the repo as private (only when it does not exist yet)")
    parser.add_argument("--commit-message", default=commit_message, help="commit message")
    parser.add_argument("--dry-run", action="store_true",
                        help="stage and check only; print the folder, files, sizes and "
                             "metadata; send nothing")
    parser.add_argument("--staging-dir", default=None,
                        help="where to stage the upload (must be empty or absent; default: a new "
                             "temporary folder, removed afterwards)")
    parser.add_argument("--retries", type=flag(low=0, high=100), default=3,
                        help="retries of the upload on transient network/server errors")


def run(args: argparse.Namespace) -> int:
    from a3duck.publish.card import check_repo_id
    from a3duck.publish.hub import (
        check_staged,
        describe,
        require_token,
        stage,
        staging_folder,
        upload,
    )

    check_repo_id(args.repo_id)  # before staging: an invalid id never reaches the card
    token = None
    if not args.dry_run:
        token = require_token()  # before any network call, so a missing token sends nothing
    with staging_folder(args.staging_dir) as out:
        notes = stage(Path(args.adapter_dir), out, args.repo_id, lang=args.lang,
                      include_merged=args.include_merged,
                      overwrite_readme=args.overwrite_readme)
        check_staged(out, token)
        print(describe(out, notes))
        if args.dry_run:
            print("dry run: nothing was uploaded"
                  + ("" if args.staging_dir else " (the temporary staging folder was removed)"))
            return 0
        url = upload(out, args.repo_id, token, private=args.private, revision=args.revision,
                     create_pr=args.create_pr, commit_message=args.commit_message,
                     retries=args.retries)
    print(f"uploaded in one commit: {url}")
    return 0

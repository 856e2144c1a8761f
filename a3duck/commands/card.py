"""`a3duck card`: render the model card (the README) of an adapter folder."""

from __future__ import annotations

import argparse
from pathlib import Path

from a3duck.adapter_folder import CARD, EVAL_RESULTS
from a3duck.publish import DEFAULT_REPO_ID
from a3duck.publish.card import LANGS
from a3duck.publish.readme import BESIDE, card_target


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adapter", "--adapter-dir", dest="adapter", required=True,
                        help=f"adapter folder (from `a3duck train`); {CARD} is written into it")
    parser.add_argument("--eval-results", default=None,
                        help=f"{EVAL_RESULTS} from `a3duck eval` (default: one in the adapter "
                             "folder or its parent); missing means 'not evaluated'")
    parser.add_argument("--contamination", default=None,
                        help="JSON report from `a3duck check-contamination` to include")
    parser.add_argument("--repo-id", default=DEFAULT_REPO_ID,
                        help=f"Hub repo the card describes (default {DEFAULT_REPO_ID})")
    parser.add_argument("--lang", choices=LANGS, default="en", help="card language (en or ko)")
    parser.add_argument("--output", default=None,
                        help=f"write the card here instead of ADAPTER/{CARD}")
    parser.add_argument("--overwrite-readme", action="store_true",
                        help=f"replace a hand-written ADAPTER/{CARD} (backed up first to "
                        f"{CARD}.bak); by default it is kept and the card is written beside "
                        f"it as {BESIDE}")


def run(args: argparse.Namespace) -> int:
    from a3duck.files import atomic_write_text
    from a3duck.publish.card import render_card
    from a3duck.publish.card_results import load_eval_results, write_hub_eval_results

    adapter_dir = Path(args.adapter)
    card = render_card(adapter_dir, repo_id=args.repo_id, eval_results=args.eval_results,
                       contamination=args.contamination, lang=args.lang)
    out, note = (Path(args.output), None) if args.output else card_target(
        adapter_dir / CARD, args.overwrite_readme)
    if note:
        print(f"note: {note}")
    atomic_write_text(out, str(card))
    print(f"model card written: {out}")
    hub_file = write_hub_eval_results(out.parent, load_eval_results(args.eval_results,
                                                                    adapter_dir, ""))
    if hub_file:
        print(f"Hub eval results written: {hub_file}")
    return 0

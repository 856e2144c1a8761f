#!/usr/bin/env python
"""Upload an a3duck adapter folder to the Hugging Face Hub (default repo DopeorNope/A3_duck).

Thin wrapper over ``a3duck push`` (a3duck/hub.py): stages the exact folder to upload, checks it
(adapter loads, base is a Hub id, no local paths or tokens), then uploads it as one commit.
Token: HF_TOKEN or `hf auth login`. Endpoint: HF_ENDPOINT. Example:

    python push_to_hub.py --adapter-dir out/adapter --dry-run
"""

import sys

from a3duck.cli import main

if __name__ == "__main__":
    raise SystemExit(main(["push", *sys.argv[1:]]))

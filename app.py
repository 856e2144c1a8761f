"""Hugging Face Space entry point: the UI is built by a3duck.space.ui (see docs/space.md).

Configure with flags or environment: A3DUCK_BASE_MODEL, A3DUCK_ADAPTER ('none' = base alone),
GRADIO_SERVER_PORT. `python app.py --help` lists every option.
"""

from a3duck.commands.serve import main

if __name__ == "__main__":
    raise SystemExit(main())

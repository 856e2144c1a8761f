"""Hugging Face Space entry point; the UI is built by a3duck.space.ui (see docs/space.md).

The same file is the repository's app.py and, staged by `a3duck space push`, the Space's app.py,
with a3duck_space.yaml (which base, which adapters) next to it. Flags and environment override
that file: A3DUCK_BASE_MODEL, A3DUCK_ADAPTER ('none' = base alone), A3DUCK_MCP=1,
GRADIO_SERVER_PORT. `python app.py --help` lists every option.
"""

from pathlib import Path

try:  # ZeroGPU: `spaces` must be imported before anything initialises CUDA
    import spaces  # noqa: F401
except ImportError:  # not installed: ordinary hardware
    pass

from a3duck.space.serve import main

if __name__ == "__main__":
    raise SystemExit(main(space_dir=Path(__file__).parent))

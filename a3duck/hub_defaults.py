"""The names a3duck publishes under, and the Space's defaults: one home below both
:mod:`a3duck.publish` (card, upload, `a3duck space push`) and :mod:`a3duck.space` (the app).

Imports nothing, so either package (and the core) can read them without importing the other.
"""

DEFAULT_REPO_ID = "DopeorNope/A3_duck"  # the published A3Duck adapter: card, upload and Space
SPACE_BASE_MODEL = "meta-llama/Llama-2-13b-hf"  # what a GPU Space serves by default
SPACE_ADAPTER = DEFAULT_REPO_ID  # the published adapter
# Written next to app.py by `a3duck space push`: which base and adapters the Space serves.
SPACE_CONFIG_FILE = "a3duck_space.yaml"

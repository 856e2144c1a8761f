"""Publishing: the model card (card) and the Hub upload (hub)."""

DEFAULT_REPO_ID = "DopeorNope/A3_duck"  # the published A3Duck adapter: card, upload and Space

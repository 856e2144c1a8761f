"""Publishing: the model card (card, artifacts) and the Hub upload (hub)."""

from a3duck.errors import A3DuckError

DEFAULT_REPO_ID = "DopeorNope/A3_duck"  # the published A3Duck adapter: card, upload and Space


class CardError(A3DuckError):
    """The card cannot be rendered from these artifacts; the message says what to fix."""

"""Publishing: the model card (card, artifacts) and the Hub upload (hub)."""

from a3duck.errors import A3DuckError
from a3duck.hub_defaults import DEFAULT_REPO_ID  # re-exported: its home is a3duck.hub_defaults

__all__ = ["DEFAULT_REPO_ID", "CardError"]


class CardError(A3DuckError):
    """The card cannot be rendered from these artifacts; the message says what to fix."""

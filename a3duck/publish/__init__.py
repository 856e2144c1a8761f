"""Publishing: the model card (card) and the Hub upload (hub)."""

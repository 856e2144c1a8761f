"""`a3duck serve`: start the Gradio Space locally. Its flags are the Space's own (app.py takes
the same), so they live in :mod:`a3duck.space.serve`."""

from a3duck.space.serve import add_arguments, config_from_args, run

__all__ = ["add_arguments", "config_from_args", "run"]

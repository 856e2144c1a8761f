"""a3duck: (IA)^3 fine-tuning of Llama-family models, evaluated, published and demoed."""

__version__ = "0.1.0"


def load(base=None, adapter=None, **kwargs):
    """Load a base model (and optionally an IA3 adapter). Returns ``(model, tokenizer)``.

    See :func:`a3duck.models.load`.
    """
    from a3duck.models import load as _load

    return _load(base, adapter, **kwargs)


__all__ = ["__version__", "load"]

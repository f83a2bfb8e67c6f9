"""gdlab, the gradient-descent laboratory."""

__version__ = "0.1.0"

"""gdlab, the gradient-descent laboratory."""

from gdlab import fast as _fast  # noqa: F401 (registers the fused step kernels with the core)
from gdlab._version import __version__

__all__ = ["__version__"]

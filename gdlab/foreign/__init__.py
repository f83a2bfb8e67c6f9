"""Optimizers from outside gdlab, by import path: ``torch:<module.Class>``, ``optax:<factory>``
(not yet) and ``<module.path>:<RuleClass>`` (see :mod:`gdlab.foreign.resolve`).

This package sits above the core and imports torch only when a ``torch:`` name is resolved; the
core never imports it.
"""

from __future__ import annotations

from gdlab.foreign.resolve import ForeignError, is_foreign, make_foreign, parse_foreign_sets, resolve_class

__all__ = ["ForeignError", "is_foreign", "make_foreign", "parse_foreign_sets", "resolve_class"]

"""Landscapes: test functions with exact derivatives, known critical points and plotting boxes.

``make_landscape("rosenbrock", dim=5)`` builds a registered landscape; ``parse_expression("x**2 + 3*y**2")``
builds one from a typed formula. Every landscape is an :class:`~gdlab.core.objective.Objective`
(batched value, gradient and Hessian) and a :class:`Landscape` (domain, minima, saddles, start).
"""

from gdlab.landscapes.base import Landscape, Point
from gdlab.landscapes.expr import ExpressionError, ExprLandscape, parse_expression
from gdlab.landscapes.registry import (
    LANDSCAPES,
    describe_landscape,
    landscape_class,
    list_landscapes,
    make_landscape,
)

__all__ = [
    "LANDSCAPES",
    "ExprLandscape",
    "ExpressionError",
    "Landscape",
    "Point",
    "describe_landscape",
    "landscape_class",
    "list_landscapes",
    "make_landscape",
    "parse_expression",
]

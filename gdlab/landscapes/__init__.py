"""Landscapes: test functions with exact derivatives, known critical points and plotting boxes.

``make_landscape("rosenbrock", dim=5)`` builds a registered landscape; ``parse_expression("x**2 + 3*y**2")``
builds one from a typed formula. Every landscape is an :class:`~gdlab.core.objective.Objective`
(batched value, gradient and Hessian) and a :class:`Landscape` (domain, minima, saddles, start).
Up to 16 dimensions its value and gradient are a :class:`PointProgram`: straight-line code of one
point, evaluated by NumPy here and compiled by :mod:`gdlab.fast` (:mod:`gdlab.landscapes.program`).
"""

from gdlab.landscapes.base import Landscape, Point
from gdlab.landscapes.expr import ExpressionError, ExprLandscape, parse_expression
from gdlab.landscapes.program import PointProgram, ProgramError
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
    "PointProgram",
    "ProgramError",
    "describe_landscape",
    "landscape_class",
    "list_landscapes",
    "make_landscape",
    "parse_expression",
]

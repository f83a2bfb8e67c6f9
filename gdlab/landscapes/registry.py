"""The registry of built-in landscapes: look up by name, construct with checked parameters, describe.

``LANDSCAPES`` maps each name to its class. :func:`make_landscape` builds one (an unknown name or a
bad parameter raises ``ValueError`` naming it); :func:`describe_landscape` and :func:`list_landscapes`
give JSON-ready descriptions for the CLI and the web lab.
"""

from __future__ import annotations

from typing import Any

from gdlab.core.hyper import describe, lookup
from gdlab.landscapes.base import Landscape
from gdlab.landscapes.classic import (
    Ackley,
    Beale,
    Booth,
    Easom,
    GoldsteinPrice,
    Himmelblau,
    Levi13,
    Matyas,
    McCormick,
    Rastrigin,
    Rosenbrock,
    SixHumpCamel,
    StyblinskiTang,
    ThreeHumpCamel,
)
from gdlab.landscapes.quadratics import ConditionedQuadratic, Elliptic, Saddle, Sphere
from gdlab.landscapes.teaching import DoubleWell, MonkeySaddle, TwoWells

#: Built-in landscapes by name, in the order the lab lists them.
LANDSCAPES: dict[str, type[Landscape]] = {
    cls.name: cls
    for cls in (
        Sphere,
        Elliptic,
        ConditionedQuadratic,
        Rosenbrock,
        Beale,
        Himmelblau,
        Booth,
        Matyas,
        GoldsteinPrice,
        Rastrigin,
        Ackley,
        StyblinskiTang,
        SixHumpCamel,
        ThreeHumpCamel,
        McCormick,
        Levi13,
        Easom,
        Saddle,
        MonkeySaddle,
        TwoWells,
        DoubleWell,
    )
}


def landscape_class(name: str) -> type[Landscape]:
    """The class registered under ``name``; ``ValueError`` listing the valid names otherwise."""
    return lookup(LANDSCAPES, name, "landscape")


def make_landscape(name: str, **params: Any) -> Landscape:
    """Construct the landscape ``name`` with ``params`` (validated against its declared parameters)."""
    return landscape_class(name)(**params)


def describe_landscape(landscape: str | Landscape, **params: Any) -> dict[str, Any]:
    """JSON-ready description of a landscape (by name, with ``params``, or an instance).

    Keys: ``name``, ``description``, ``dim``, ``domain`` (list of ``[lo, hi]``), ``parameters``
    (the declared specs, see :func:`gdlab.core.hyper.describe`), ``params`` (the values in use),
    ``default_start``, ``smooth``, and the critical points ``global_minima``, ``local_minima``,
    ``saddles``, ``local_maxima`` (lists of ``{"location", "value", "kind"}``). Custom expression
    landscapes add ``expression``.
    """
    if isinstance(landscape, Landscape):
        if params:
            raise ValueError("describe_landscape: params are only accepted with a landscape name")
        obj = landscape
    else:
        obj = make_landscape(landscape, **params)
    info: dict[str, Any] = {
        "name": obj.name,
        "description": obj.description,
        "dim": int(obj.dim),
        "domain": [[float(lo), float(hi)] for lo, hi in obj.domain],
        "parameters": describe(type(obj).hyperparams),
        "params": obj.params_dict(),
        "default_start": [float(v) for v in obj.default_start],
        "smooth": bool(obj.smooth),
        "global_minima": [p.to_dict() for p in obj.global_minima],
        "local_minima": [p.to_dict() for p in obj.local_minima],
        "saddles": [p.to_dict() for p in obj.saddles],
        "local_maxima": [p.to_dict() for p in obj.local_maxima],
    }
    text = getattr(obj, "text", None)
    if text is not None:
        info["expression"] = text
    return info


def list_landscapes() -> list[dict[str, Any]]:
    """Descriptions (with default parameters) of every built-in landscape, in registry order."""
    return [describe_landscape(name) for name in LANDSCAPES]

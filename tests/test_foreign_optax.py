"""optax:<factory> optimizers through the adapter (float64, jax x64 on)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gdlab.core.optimizers import make_optimizer
from gdlab.engine.run import run_batch
from gdlab.foreign import ForeignError, make_foreign
from gdlab.landscapes import make_landscape

pytest.importorskip("optax")

STARTS = np.array([[-1.5, 2.0], [0.5, 0.5]])


@pytest.mark.parametrize(("factory", "kw", "ours", "our_kw"), [
    ("optax.adam", {"learning_rate": 1e-2}, "adam", {"lr": 1e-2}),
    ("optax.lion", {"learning_rate": 1e-3, "weight_decay": 0.0}, "lion", {"lr": 1e-3}),
])
def test_optax_matches_gdlab(factory, kw, ours, our_kw):
    land = make_landscape("rosenbrock")
    a = run_batch(land, make_foreign(f"optax:{factory}", **kw), STARTS, steps=50)
    b = run_batch(land, make_optimizer(ours, **our_kw), STARTS, steps=50, backend="reference")
    np.testing.assert_allclose(a.final_params, b.final_params, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize(("name", "kw", "message"), [
    ("optax:optax.nope", {}, "has no attribute"),
    ("optax:optax.adam", {"bogus": 1}, "unexpected keyword argument"),
    ("optax:optax.GradientTransformation", {}, "not a GradientTransformation factory"),
])
def test_optax_bad_input(name, kw, message):
    with pytest.raises(ForeignError, match=message):
        make_foreign(name, **kw)


def test_cli_optax_run():
    r = subprocess.run([sys.executable, "-m", "gdlab", "run", "--landscape", "rosenbrock", "--optimizer",
                        "optax:optax.lion", "--set", "learning_rate=1e-3", "--steps", "10"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "looped" in r.stderr

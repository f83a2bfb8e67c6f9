"""Foreign optimizers: torch classes by import path, a user's rule class, and their bad input."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from gdlab.core.optimizers import make_optimizer
from gdlab.engine.run import run_batch
from gdlab.foreign import ForeignError, make_foreign, parse_foreign_sets
from gdlab.landscapes import make_landscape

torch = pytest.importorskip("torch")

STARTS = np.array([[-1.5, 2.0], [0.5, 0.5], [1.2, -0.3]])


def test_torch_adam_matches_gdlab_adam_batched_by_looping():
    land = make_landscape("rosenbrock")
    theirs = run_batch(land, make_foreign("torch:torch.optim.Adam", lr=0.01), STARTS, steps=60)
    ours = run_batch(land, make_optimizer("adam", lr=0.01), STARTS, steps=60, backend="reference")
    np.testing.assert_allclose(theirs.final_params, ours.final_params, rtol=0, atol=1e-13)
    np.testing.assert_allclose(theirs.positions, ours.positions, rtol=0, atol=1e-13)


def test_torch_sgd_under_a_schedule_gets_the_schedule_lr():
    from gdlab.core.schedules import make_schedule

    land = make_landscape("rosenbrock")
    sched = make_schedule("step", step_size=10, gamma=0.5)
    theirs = run_batch(land, make_foreign("torch:torch.optim.SGD", lr=1e-3, momentum=0.9), STARTS, steps=40,
                       schedule=sched)
    ours = run_batch(land, make_optimizer("sgd", lr=1e-3, momentum=0.9), STARTS, steps=40, schedule=sched,
                     backend="reference")
    np.testing.assert_allclose(theirs.final_params, ours.final_params, rtol=0, atol=1e-13)


def test_user_rule_runs_fused_equal_to_reference():
    land = make_landscape("rosenbrock")
    opt = make_foreign("tests.foreign_rule_module:HeavyBall", lr=1e-3, beta=0.8)
    fused = run_batch(land, opt, STARTS, steps=100, backend="fused")
    ref = run_batch(land, opt, STARTS, steps=100, backend="reference")
    np.testing.assert_array_equal(fused.final_params, ref.final_params)
    np.testing.assert_array_equal(fused.positions, ref.positions)


@pytest.mark.parametrize(("name", "kwargs", "message"), [
    ("torch:torch.optim.Nope", {}, "has no attribute 'Nope'"),
    ("torch:no_such_pkg_xyz.Opt", {}, "cannot import module"),
    ("torch:numpy.ndarray", {}, "is not a torch.optim.Optimizer subclass"),
    ("torch:torch.optim.Adam", {"bogus": 1}, "unexpected keyword argument 'bogus'"),
    ("torch:torch.optim.Adam", {"lr": -1.0}, "Invalid learning rate"),
    ("tests.foreign_rule_module:NotARule", {}, "is not a subclass of gdlab.core.rule.Rule"),
    ("tests.foreign_rule_module:HeavyBall", {"beta": 2.0}, "out of range"),
    ("no_such_mod_xyz:Rule", {}, "cannot import module"),
])
def test_bad_input_is_one_clear_error(name, kwargs, message):
    with pytest.raises(ForeignError, match=message) as info:
        make_foreign(name, **kwargs)
    assert "\n" not in str(info.value)


class _Explodes(torch.optim.Optimizer):
    def __init__(self, params, lr=0.1):
        super().__init__(params, {"lr": lr})

    def step(self, closure=None):
        for group in self.param_groups:
            for p in group["params"]:
                p.data.fill_(float("nan") if self.state.setdefault(p, {}).setdefault("n", 0) >= 3 else 0.0)
                self.state[p]["n"] += 1


def test_nan_from_a_torch_optimizer_stops_the_run_diverged(monkeypatch):
    import tests.foreign_rule_module as mod

    monkeypatch.setattr(mod, "Explodes", _Explodes, raising=False)
    land = make_landscape("rosenbrock")
    rec = run_batch(land, make_foreign("torch:tests.foreign_rule_module.Explodes"), STARTS[:2], steps=20)
    assert list(rec.stopped_at) == [4, 4]  # three good steps, the fourth refused
    assert list(rec.status) == ["diverged", "diverged"], rec.reasons()
    assert np.all(np.isfinite(rec.final_params))


def test_set_values_parse_without_eval():
    assert parse_foreign_sets(["lr=1e-3", "betas=0.9,0.99", "amsgrad=true", "foreach=none", "n=3"]) == {
        "lr": 1e-3, "betas": (0.9, 0.99), "amsgrad": True, "foreach": None, "n": 3}
    with pytest.raises(ForeignError, match="not a number"):
        parse_foreign_sets(["lr=__import__('os')"])


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "gdlab", *args], capture_output=True, text=True, timeout=120)


def test_cli_runs_a_torch_optimizer_and_says_it_loops():
    r = _cli("run", "--landscape", "rosenbrock", "--optimizer", "torch:torch.optim.Adam", "--set", "lr=0.01",
             "--steps", "20")
    assert r.returncode == 0, r.stderr
    assert "looped" in r.stderr


@pytest.mark.parametrize("name", ["torch:torch.optim.Nope", "tests.foreign_rule_module:NotARule"])
def test_cli_bad_foreign_optimizer_exits_2_with_one_line(name):
    r = _cli("run", "--landscape", "rosenbrock", "--optimizer", name, "--steps", "5")
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


def test_lr_sweep_of_a_torch_optimizer_loops_one_run_per_rate():
    from gdlab.engine.sweeps import lr_sweep

    land = make_landscape("rosenbrock")
    sweep = lr_sweep(land, "torch:torch.optim.Adam", [1e-3, 1e-2], start=[-1.5, 2.0], steps=30)
    ours = lr_sweep(land, "adam", [1e-3, 1e-2], start=[-1.5, 2.0], steps=30)
    assert sweep.looped
    np.testing.assert_allclose(sweep.final_loss, ours.final_loss, rtol=1e-12)


def test_compare_takes_foreign_specs():
    r = _cli("compare", "--landscape", "rosenbrock", "--optimizer", "torch:torch.optim.Adam:lr=0.01,betas=0.9/0.99",
             "--optimizer", "tests.foreign_rule_module:HeavyBall:lr=0.001",
             "--optimizer", "adam:lr=0.01,betas=0.9/0.99",
             "--steps", "30", "--json")
    assert r.returncode == 0, r.stderr
    import json

    out = json.loads(r.stdout)
    text = json.dumps(out)
    assert ("torch:torch.optim.Adam" in text and "HeavyBall" in text) or "heavyball_test" in text
    bad = _cli("compare", "--landscape", "rosenbrock", "--optimizer", "torch:torch.optim.Adam:bogus=1", "--steps", "5")
    assert bad.returncode == 2 and "bogus" in bad.stderr and "Traceback" not in bad.stderr


def test_figures_draw_foreign_runs(tmp_path):
    """`compare --plot` draws a torch optimizer's path beside gdlab's own: the picture is written and
    the two runs it draws end at the same point (torch's Adam and gdlab's, float64)."""
    import json

    png = tmp_path / "paths.png"
    r = _cli("compare", "--landscape", "rosenbrock", "--optimizer", "torch:torch.optim.Adam:lr=0.01",
             "--optimizer", "adam:lr=0.01", "--steps", "40", "--json", "--plot", str(png))
    assert r.returncode == 0, r.stderr
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    runs = json.loads(r.stdout)
    runs = runs.get("runs", runs) if isinstance(runs, dict) else runs
    finals = [np.asarray(run["final_point"] if "final_point" in run else run["trajectory"][-1]) for run in runs]
    assert len(finals) == 2
    np.testing.assert_allclose(finals[0], finals[1], rtol=1e-12)

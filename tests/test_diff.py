"""``gdlab diff``: where two optimizers part on the same gradients, and which convention explains it."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("torch")


def _diff(*args):
    r = subprocess.run([sys.executable, "-m", "gdlab", "diff", *args], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout)


def test_adam_and_torch_adam_agree():
    out = _diff("--optimizer", "adam", "--against", "torch:torch.optim.Adam", "--set", "lr=1e-3", "--json")
    assert out["agree"] and out["first_step"] is None and out["max_rel_diff"] < 1e-12


def test_eps_inside_the_root_is_named():
    out = _diff("--optimizer", "adam", "--optimizer-set", "eps_inside_sqrt=true", "--set", "eps=1e-3",
                "--against", "torch:torch.optim.Adam", "--set", "lr=1e-3", "--json")
    assert not out["agree"] and out["first_step"] == 1 and out["first_index"] == 0
    assert [e["set"] for e in out["explanations"]] == [{"eps_inside_sqrt": False}]
    assert "root" in out["explanations"][0]["convention"]


def test_adamw_paper_form_names_the_decay_convention_on_a_landscape():
    out = _diff("--optimizer", "adamw", "--optimizer-set", "weight_decay_form=paper", "--set", "weight_decay=0.1",
                "--set", "lr=1e-2", "--against", "torch:torch.optim.AdamW", "--landscape", "rosenbrock", "--json")
    assert not out["agree"]
    assert [e["set"] for e in out["explanations"]] == [{"weight_decay_form": "torch"}]


def test_sgd_nesterov_form_under_a_schedule():
    base = ("--optimizer", "sgd", "--set", "lr=0.01", "--set", "momentum=0.9", "--against", "torch:torch.optim.SGD",
            "--schedule", "step", "--schedule-set", "step_size=10", "--json")
    assert _diff(*base)["agree"]
    out = _diff(*base, "--optimizer-set", "nesterov=true")
    assert [e["set"] for e in out["explanations"]] == [{"nesterov": False}]


def test_text_output_names_the_step_and_the_convention():
    r = subprocess.run([sys.executable, "-m", "gdlab", "diff", "--optimizer", "adam", "--optimizer-set",
                        "eps_inside_sqrt=true", "--set", "eps=1e-3", "--against", "torch:torch.optim.Adam"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    assert "they part at step 1, parameter 0" in r.stdout and "explained by: ε outside the root" in r.stdout


def test_coupled_against_decoupled_decay_is_named():
    """gdlab's adam adds λθ to the gradient (torch's Adam weight_decay); torch's AdamW decouples it:
    they part, and the explanation is AdamW's decoupled decay (and the other way round)."""
    out = _diff("--optimizer", "adam", "--set", "weight_decay=0.1", "--set", "lr=1e-2",
                "--against", "torch:torch.optim.AdamW", "--json")
    assert not out["agree"]
    assert [e["set"] for e in out["explanations"]] == [{"optimizer": "adamw"}]
    assert "decoupled" in out["explanations"][0]["convention"]
    back = _diff("--optimizer", "adamw", "--set", "weight_decay=0.1", "--set", "lr=1e-2",
                 "--against", "torch:torch.optim.Adam", "--json")
    assert [e["set"] for e in back["explanations"]] == [{"optimizer": "adam"}]
    assert _diff("--optimizer", "adam", "--set", "weight_decay=0.1", "--set", "lr=1e-2",
                 "--against", "torch:torch.optim.Adam", "--json")["agree"]


def test_nadam_decay_form_is_named():
    out = _diff("--optimizer", "nadam", "--set", "weight_decay=0.1", "--set", "lr=1e-2",
                "--against", "torch:torch.optim.NAdam", "--against-set", "decoupled_weight_decay=true", "--json")
    assert [e["set"] for e in out["explanations"]] == [{"decoupled_weight_decay": True}]


def test_missing_bias_correction_is_named():
    """A user's Adam without the division by 1 − βᵗ parts from gdlab's adam at step 1; gdlab's adam
    with ``bias_correction=false`` is the explanation, and agrees with it when set."""
    against = "torch:tests.foreign_torch_module.AdamWithoutBiasCorrection"
    out = _diff("--optimizer", "adam", "--set", "lr=1e-3", "--against", against, "--json")
    assert not out["agree"] and out["first_step"] == 1
    assert [e["set"] for e in out["explanations"]] == [{"bias_correction": False}]
    assert "bias correction" in out["explanations"][0]["convention"]
    assert _diff("--optimizer", "adam", "--set", "lr=1e-3", "--optimizer-set", "bias_correction=false",
                 "--against", against, "--json")["agree"]

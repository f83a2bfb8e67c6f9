"""The lab with foreign optimizers given at start-up (never from a request)."""

from __future__ import annotations

import subprocess
import sys

import pytest
from fastapi.testclient import TestClient

from gdlab.foreign import ForeignError
from gdlab.web import create_app

pytest.importorskip("torch")

NAME = "torch:torch.optim.Adam"


@pytest.fixture(scope="module")
def client():
    with TestClient(create_app(warm=False, optimizers=[NAME, "tests.foreign_rule_module:HeavyBall"]),
                    base_url="http://localhost") as c:
        yield c


def test_meta_lists_foreign_optimizers_with_their_hyperparameters(client):
    meta = client.get("/api/meta").json()
    by_name = {o["name"]: o for o in meta["optimizers"]}
    assert by_name[NAME]["foreign"] is True
    hp = {h["name"]: h for h in by_name[NAME]["hyperparams"]}
    assert hp["lr"]["default"] == 0.001 and hp["betas"]["default"] == [0.9, 0.999] and hp["amsgrad"]["kind"] == "bool"
    assert "tests.foreign_rule_module:HeavyBall" in by_name


def test_run_accepts_a_foreign_name(client):
    body = {"landscape": "rosenbrock", "steps": 20,
            "optimizers": [{"name": NAME, "hyperparams": {"lr": 0.01}}, {"name": "adam", "hyperparams": {"lr": 0.01}}]}
    r = client.post("/api/run", json=body)
    assert r.status_code == 200, r.text


def test_a_request_cannot_load_a_foreign_optimizer():
    with TestClient(create_app(warm=False), base_url="http://localhost") as c:
        body = {"landscape": "rosenbrock", "steps": 5, "optimizers": [{"name": NAME}]}
        r = c.post("/api/run", json=body)
        assert r.status_code in (400, 422)


def test_bad_foreign_optimizer_refuses_to_start():
    with pytest.raises(ForeignError):
        create_app(warm=False, optimizers=["torch:torch.optim.Nope"])
    r = subprocess.run([sys.executable, "-m", "gdlab", "serve", "--port", "0", "--optimizer", "torch:torch.optim.Nope"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "Nope" in r.stderr and "Traceback" not in r.stderr

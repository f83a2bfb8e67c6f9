"""gdlab's rules are torch.optim's float64 arithmetic to the last bit, where torch's is IEEE's.

``tests/torch_portable.py`` runs in a fresh process with torch's portable kernels and a correctly
rounded square root (its docstring says why both are needed); there every parity case fed a 100-step
random gradient stream of 300 coordinates, and a small MLP trained 100 steps with ``gdlab.torch``
beside ``torch.optim``, give identical float64 numbers. With torch's vectorised kernels and its own
``sqrt`` the same runs agree to 1e-12 (``test_parity_torch``, ``test_gdlab_torch``).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")

from test_parity_torch import CASES, IDS
from torch_portable import MLP_CASES, NO_SQRT, case_key

HERE = Path(__file__).parent
MLP_IDS = [case_key(name, kwargs) for name, kwargs in MLP_CASES]


@pytest.fixture(scope="module")
def portable() -> dict:
    # MKL_CBWR: the MLP's matrix products give the same bits for equal weights wherever they lie in memory.
    env = {**os.environ, "ATEN_CPU_CAPABILITY": "default", "MKL_CBWR": "COMPATIBLE"}
    done = subprocess.run([sys.executable, str(HERE / "torch_portable.py")], cwd=HERE, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout)
    assert result["capability"] == "DEFAULT"
    return result


@pytest.mark.parametrize("key", [case_key(name, kw) for name, _, kw, _ in CASES], ids=IDS)
def test_random_stream_bit_for_bit(portable, key):
    assert portable["streams"][key] == 0


@pytest.mark.parametrize("key", MLP_IDS, ids=MLP_IDS)
def test_mlp_weights_identical_after_100_steps(portable, key):
    assert portable["mlp"][key] == 0


@pytest.mark.parametrize("key", [k for k in MLP_IDS if k.split()[0] in NO_SQRT])
def test_mlp_without_a_square_root_identical_with_torchs_own_kernels(portable, key):
    assert portable["mlp_torch_sqrt"][key] == 0

"""gdlab.torch: gdlab's rules as torch optimizers, on the tensors' memory."""

from __future__ import annotations

import copy

import pytest

torch = pytest.importorskip("torch")
gt = pytest.importorskip("gdlab.torch")

from torch_oracle import mlp as _mlp  # noqa: E402
from torch_oracle import train_mlp as _train  # noqa: E402


@pytest.mark.parametrize(("ours", "theirs", "kw"), [
    ("Adam", torch.optim.Adam, {"lr": 1e-2, "weight_decay": 0.01}),
    ("AdamW", torch.optim.AdamW, {"lr": 1e-2}),
    ("SGD", torch.optim.SGD, {"lr": 1e-2, "momentum": 0.9, "nesterov": True}),
    ("RMSprop", torch.optim.RMSprop, {"lr": 1e-3, "centered": True}),
])
def test_mlp_weights_identical_to_torch_after_100_steps(ours, theirs, kw):
    a, b = _mlp(), _mlp()
    wa = _train(a, getattr(gt, ours)(a.parameters(), **kw))
    wb = _train(b, theirs(b.parameters(), foreach=False, **kw))
    for pa, pb in zip(wa, wb, strict=True):
        # Bit for bit under torch's portable kernels with an IEEE square root (test_torch_bit_exact).
        # Here torch runs its vectorised kernels, which fuse a + α·b into one FMA, and a float64 sqrt
        # that is sometimes an ulp off the correctly rounded root: the weights part by ulps.
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=0)


def test_param_groups_and_a_scheduler():
    a, b = _mlp(), _mlp()
    oa = gt.Adam([{"params": a[0].parameters(), "lr": 1e-2}, {"params": a[2].parameters()}], lr=1e-3)
    ob = torch.optim.Adam([{"params": b[0].parameters(), "lr": 1e-2}, {"params": b[2].parameters()}], lr=1e-3,
                          foreach=False)
    wa = _train(a, oa, 50, torch.optim.lr_scheduler.StepLR(oa, 10, 0.5))
    wb = _train(b, ob, 50, torch.optim.lr_scheduler.StepLR(ob, 10, 0.5))
    for pa, pb in zip(wa, wb, strict=True):
        torch.testing.assert_close(pa, pb, rtol=1e-12, atol=0)


def test_state_dict_round_trip_continues_identically():
    a = _mlp()
    oa = gt.NAdam(a.parameters(), lr=1e-2)
    _train(a, oa, 30)
    b = copy.deepcopy(a)
    ob = gt.NAdam(b.parameters(), lr=1e-2)
    ob.load_state_dict(copy.deepcopy(oa.state_dict()))
    for pa, pb in zip(_train(a, oa, 20), _train(b, ob, 20), strict=True):
        assert torch.equal(pa, pb)


def test_float32_runs_in_place_without_copies():
    p = torch.nn.Parameter(torch.ones(10, dtype=torch.float32))
    opt = gt.Adam([p], lr=0.1)
    p.grad = torch.ones(10, dtype=torch.float32)  # explicit: another test module sets torch's default to float64
    before = p.data_ptr()
    opt.step()
    assert p.data_ptr() == before and torch.allclose(p.detach(), torch.full((10,), 0.9, dtype=torch.float32))
    assert opt.state[p]["exp_avg"].dtype == torch.float32


@pytest.mark.parametrize(("make", "message"), [
    (lambda: torch.ones(4, dtype=torch.float16), "dtype torch.float16"),
    (lambda: torch.ones(4, 3, dtype=torch.float64).t(), "not contiguous"),
    (lambda: torch.ones(4, dtype=torch.float64, device="meta"), "CPU tensors only"),
])
def test_refuses_other_tensors(make, message):
    p = torch.nn.Parameter(make())
    p.grad = torch.ones_like(p)
    opt = gt.Adam([p])
    with pytest.raises(ValueError, match=message):
        opt.step()


def test_bad_hyperparameter_refused_at_construction():
    with pytest.raises(ValueError, match="lr"):
        gt.Adam([torch.nn.Parameter(torch.ones(2))], lr=-1.0)


def test_sam_closure_matches_gdlab_sam_on_one_tensor():
    import numpy as np

    from gdlab.core.optimizers import make_optimizer
    from gdlab.landscapes import make_landscape

    land = make_landscape("rosenbrock")
    p = torch.nn.Parameter(torch.tensor([-1.5, 2.0], dtype=torch.float64))
    opt = gt.SAM([p], base=gt.Adam, rho=0.05, lr=1e-2)

    def f(t):
        x, y = t[0], t[1]
        return (1 - x) ** 2 + 100 * (y - x * x) ** 2

    def closure():
        opt.zero_grad()
        loss = f(p)
        loss.backward()
        return loss

    ref = make_optimizer("sam", base="adam", rho=0.05, lr=1e-2)
    x = np.array([-1.5, 2.0])
    state = ref.init(x)
    for _ in range(30):
        closure()
        opt.step(closure)
        x, state, _ = ref.step(land, x, state)
    np.testing.assert_allclose(p.detach().numpy(), x, rtol=1e-12, atol=0)


def test_sam_needs_a_closure():
    p = torch.nn.Parameter(torch.ones(2, dtype=torch.float64))
    p.grad = torch.ones(2, dtype=torch.float64)
    with pytest.raises(ValueError, match="needs a closure"):
        gt.SAM([p], base="adam").step()

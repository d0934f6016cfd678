"""The soft limits: identity in range, bounded, increasing, never a zero gradient."""

import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from grafx_dsp import Range, soft_limit

BOUNDS = Range(low=20.0, high=20000.0, default=1000.0, floor=10.0, ceiling=21000.0)


@settings(max_examples=200, deadline=None)
@given(st.lists(st.floats(-1e6, 1e6), min_size=2, max_size=20))
def test_soft_limit_is_identity_in_range_bounded_and_strictly_increasing(values):
    x = torch.tensor(sorted(values), dtype=torch.float64, requires_grad=True)
    y = soft_limit(x, BOUNDS)
    inside = (x >= BOUNDS.low) & (x <= BOUNDS.high)
    torch.testing.assert_close(y[inside], x[inside])
    assert ((y >= BOUNDS.floor) & (y <= BOUNDS.ceiling)).all()
    assert (y[1:] >= y[:-1]).all()
    (gradient,) = torch.autograd.grad(y.sum(), x)
    assert (gradient >= 0).all() and (gradient[x.abs() < 1e4] > 0).all()


def test_soft_limit_is_smooth_at_the_range_ends():
    for end in (BOUNDS.low, BOUNDS.high):
        x = torch.tensor([end - 1e-6, end + 1e-6], dtype=torch.float64, requires_grad=True)
        (gradient,) = torch.autograd.grad(soft_limit(x, BOUNDS).sum(), x)
        torch.testing.assert_close(gradient, torch.ones(2, dtype=torch.float64))

"""Python types: what is not an array raises TypeError naming its type (README: "an argument
of the wrong Python type -> TypeError"); float16 arrays and bfloat16/float16 tensors are read
(converted once to float32, which holds their values exactly)."""
import numpy as np
import pytest
from scipy import sparse

import recalign

D = 6


def states():
    return [recalign.MomentAccumulator(D), recalign.FrequentDirections(D, 3), recalign.NystromSketch(D, 2, oversampling=2, probes=2)]


@pytest.mark.parametrize("bad, name", [(None, "NoneType"), ("0.5 1.5", "str"), (b"\x00" * 48, "bytes"),
                                       ({"x": 1}, "dict"), (sparse.csr_matrix(np.ones((4, D))), "scipy.sparse")])
def test_wrong_types_raise_type_error(bad, name):
    for s in states():
        with pytest.raises(TypeError, match=name) as e:
            s.update(bad)
        assert str(e.value).startswith("batch: ") and s.n == 0
    acc = recalign.MomentAccumulator(D, classes=3)
    with pytest.raises(TypeError, match=name):
        acc.update(bad, np.zeros(4, dtype=int))
    if bad is not None:  # y=None means "no labels"
        with pytest.raises(TypeError, match=name) as e:
            acc.update(np.ones((4, D)), bad)
        assert str(e.value).startswith("labels: ") and acc.n == 0


def test_half_precision():
    torch = pytest.importorskip("torch", reason="torch is not importable: install Debian's python3-torch")
    x = np.random.RandomState(1).rand(20, D).astype(np.float32)
    for dtype in (torch.bfloat16, torch.float16):
        t = torch.from_numpy(x).to(dtype)
        want = recalign.MomentAccumulator(D)
        want.update(t.to(torch.float32).numpy())
        for s in (recalign.MomentAccumulator(D), recalign.FrequentDirections(D, 3)):
            s.update(t)
            assert s.n == 20
        got = recalign.MomentAccumulator(D)
        got.update(t)
        assert got.to_bytes() == want.to_bytes(), dtype
    half = x.astype(np.float16)
    got, want = recalign.MomentAccumulator(D), recalign.MomentAccumulator(D)
    got.update(half)
    want.update(half.astype(np.float32))
    assert got.to_bytes() == want.to_bytes()

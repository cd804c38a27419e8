"""The synthetic batches test_verified.py and test_verified_cli.py share: one generator (seed
5) for both files, drawn in pytest's order (test_verified.py's tests, then
test_verified_cli.py's), so each test sees the rows it saw when the two were one file."""
import numpy as np

RNG = np.random.default_rng(5)


def synthetic_batches(n=300, size=64):
    x = RNG.integers(0, 256, size=(n, 8 * 8 * 3), dtype=np.uint8)
    y = RNG.integers(0, 5, n)
    x[:, :5] = (y[:, None] * 40).astype(np.uint8)
    return [(x[i:i + size], y[i:i + size]) for i in range(0, n, size)]

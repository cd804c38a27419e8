"""Shared fixtures: Fashion-MNIST subsets (Debian package dataset-fashion-mnist), loaded the
way tests/oracle/paper_alignment.py loads them."""
import gzip
import os

import numpy as np
import pytest

ROOT = os.environ.get("RECALIGN_FASHION_MNIST", "/usr/share/datasets/fashion-mnist")


def _load(n):
    with gzip.open(os.path.join(ROOT, "train-images-idx3-ubyte.gz")) as f:
        images = np.frombuffer(f.read(16 + 784 * n), dtype=np.uint8, offset=16).reshape(-1, 784)[:n]
    with gzip.open(os.path.join(ROOT, "train-labels-idx1-ubyte.gz")) as f:
        labels = np.frombuffer(f.read(8 + n), dtype=np.uint8, offset=8)[:n]
    return images.copy(), labels.copy()


_data_set_missing = []


@pytest.fixture(scope="session")
def fashion():
    """First 3000 training images (uint8, 3000 x 784) and labels (uint8); the test is skipped
    when the data set is missing."""
    missing = [f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz")
               if not os.path.exists(os.path.join(ROOT, f))]
    if missing:
        _data_set_missing.append(ROOT)
        pytest.skip(f"data set missing: {', '.join(missing)} not under {ROOT} (Debian package "
                    "dataset-fashion-mnist, or RECALIGN_FASHION_MNIST=DIR)")
    return _load(3000)


def pytest_sessionfinish(session, exitstatus):
    """A missing data set reads as a skip, not a pass: exit 77 (meson's SKIP) instead of 0 when
    nothing failed but tests were skipped for lack of Fashion-MNIST (tests/data_sets.py does
    the same for the other suites)."""
    if exitstatus == pytest.ExitCode.OK and _data_set_missing:
        session.exitstatus = 77


def batches(x, size):
    for lo in range(0, len(x), size):
        yield lo, min(lo + size, len(x))


def torch_or_skip():
    try:
        import torch
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"torch is not importable ({e}); install Debian's python3-torch")
    return torch

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


@pytest.fixture(scope="session")
def fashion():
    """First 3000 training images (uint8, 3000 x 784) and labels (uint8)."""
    if not os.path.exists(os.path.join(ROOT, "train-images-idx3-ubyte.gz")):
        pytest.fail(f"Fashion-MNIST not found under {ROOT} (Debian package dataset-fashion-mnist)")
    return _load(3000)


def batches(x, size):
    for lo in range(0, len(x), size):
        yield lo, min(lo + size, len(x))


def torch_or_skip():
    try:
        import torch
    except ImportError as e:  # pragma: no cover
        pytest.skip(f"torch is not importable ({e}); install Debian's python3-torch")
    return torch

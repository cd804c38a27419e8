"""Where the Python test scripts find Fashion-MNIST, and what they do without it: exit 77,
meson's SKIP, so that a missing data set does not read as a pass (tests/data_sets.hpp does
the same for the C++ tests; tests/cli/conftest.py for the CLI's pytest modules)."""
import os
import sys

MESON_SKIP = 77


def fashion_mnist_train():
    """(images, labels) paths of the training set: Debian package dataset-fashion-mnist, or
    the directory in RECALIGN_FASHION_MNIST (which the library and the CLI honour too)."""
    root = os.environ.get("RECALIGN_FASHION_MNIST") or "/usr/share/datasets/fashion-mnist"
    return os.path.join(root, "train-images-idx3-ubyte.gz"), os.path.join(root, "train-labels-idx1-ubyte.gz")


def fashion_mnist_missing():
    """None when the training files exist, else the reason to skip: which are missing."""
    missing = [f for f in fashion_mnist_train() if not os.path.exists(f)]
    if not missing:
        return None
    return f"data set missing: {', '.join(missing)} (Debian package dataset-fashion-mnist, or RECALIGN_FASHION_MNIST=DIR)"


def fashion_mnist_or_skip(what):
    """The training files; without them, says so and exits 77 (for test scripts run by meson)."""
    reason = fashion_mnist_missing()
    if reason:
        print(f"{what}: skipped, {reason}")
        sys.exit(MESON_SKIP)
    return fashion_mnist_train()

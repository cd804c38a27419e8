"""The default data set (Fashion-MNIST, Debian package dataset-fashion-mnist): align on a
small subset matches the NumPy oracle, spectrum reads no labels, the text output works.
Every test needs the data set: without it this module skips (exit 77, conftest.py)."""
import gzip

import numpy as np
import pytest

import cli_common as c

n = 1500


@pytest.fixture(scope="module")
def subset(fashion_mnist):
    """The first n training images (pixels / 255) and labels, read with gzip and NumPy."""
    ti, tl = fashion_mnist
    with gzip.open(ti) as f:
        f.read(16)
        x = np.frombuffer(f.read(n * 784), dtype=np.uint8).reshape(n, 784) * (1.0 / 255.0)
    with gzip.open(tl) as f:
        f.read(8)
        y = np.frombuffer(f.read(n), dtype=np.uint8).astype(np.int64)
    return x, y


def test_align_matches_the_oracle(subset):
    x, y = subset
    j = c.run_json(["align", "--limit", n])
    lam, curve = c.alignment_oracle(x, y, 10)
    assert j["n"] == n and j["d"] == 784 and j["classes"] == 10 and j["centered"] is False, "default data fields"
    assert abs(j["scale"] - 1 / 255) < 1e-18, f"default scale {j['scale']}"
    c.assert_close(j["eigenvalues"][:len(lam)], lam, 1e-8, "Fashion-MNIST eigenvalues", atol=1e-9 * lam[0])
    c.assert_close(j["alignment"], curve, 1e-7, "Fashion-MNIST alignment curve", atol=1e-9)


def test_spectrum_is_centered_without_labels(fashion_mnist):
    s = c.run_json(["spectrum", "--limit", n])
    assert s["centered"] is True and s["input"][0]["labels"] is None, "spectrum default: centered, no labels"


def test_align_text_output(fashion_mnist):
    rc, so, err = c.run(["align", "--limit", 500])
    assert rc == 0 and "alignment" in so and "784" in so, f"align text output: {rc} {so}"


def test_fd_alignment_is_verified(fashion_mnist):
    """Issue 14's report: `align --method fd --rank 50` printed alignment(50) = 0.797 where the
    exact curve never exceeds 0.637. Verified (the default), the curve is that of the returned
    subspace: at most the exact curve's maximum and close to the exact one."""
    args = ["align", "--limit", 20000]
    exact = c.run_json(args)
    fd = c.run_json(args + ["--method", "fd", "--rank", 50])
    raw = c.run_json(args + ["--method", "fd", "--rank", 50, "--no-verify"])
    assert fd["exact_for"] == "returned subspace"
    assert max(fd["alignment"]) <= max(exact["alignment"]), "verified curve above anything exact"
    c.assert_close(fd["alignment"], exact["alignment"][:50], 0, "verified fd curve vs exact", atol=5e-3)
    # Unverified, alignment(50) is read off FD's eigenvalues (biased low by up to Δ): 0.774 with
    # ℓ = 2K (Δ = 2,092), 0.627 with ℓ = 3K (Δ = 1,125), against the exact 0.579.
    assert raw["alignment"][49] > exact["alignment"][49] + 0.02, "the unverified estimate overshoots (why we verify)"

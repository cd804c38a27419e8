"""The synthetic data the verified-route tests share: batches from one generator (seed 5) for
test_verified.py and test_verified_cli.py, drawn in pytest's order (test_verified.py's tests, then
test_verified_cli.py's), so each test sees the rows it saw when the two were one file; and
recalign-synth's images for the CLI-parity tests."""
import json
import os
import subprocess

import numpy as np
import pytest

RNG = np.random.default_rng(5)


def synthetic_batches(n=300, size=64):
    x = RNG.integers(0, 256, size=(n, 8 * 8 * 3), dtype=np.uint8)
    y = RNG.integers(0, 5, n)
    x[:, :5] = (y[:, None] * 40).astype(np.uint8)
    return [(x[i:i + size], y[i:i + size]) for i in range(0, n, size)]


SYNTH = os.environ.get("RECALIGN_SYNTH")


def synth_images(tmp_path, rows, side, batch=100, name="s"):
    """recalign-synth's 1/f² images, side x side x 3, seed 5, written to tmp_path as NAME.u8 and
    NAME.npy (skips the test when the suite has no recalign-synth): (images path, labels path,
    the rows as u8 (rows x side*side*3), the labels, the rows in batches of `batch`)."""
    if not SYNTH or not os.path.exists(SYNTH):
        pytest.skip("RECALIGN_SYNTH is not set (the python suite sets it when tools are built)")
    images, labels = str(tmp_path / f"{name}.u8"), str(tmp_path / f"{name}.npy")
    subprocess.run([SYNTH, "--rows", str(rows), "--height", str(side), "--width", str(side), "--seed", "5",
                    "--output", images, "--labels", labels], check=True, capture_output=True)
    x = np.fromfile(images, dtype=np.uint8).reshape(rows, side * side * 3)
    y = np.load(labels)
    return images, labels, x, y, [(x[i:i + batch], y[i:i + batch]) for i in range(0, rows, batch)]


CLI = os.environ.get("RECALIGN_CLI")


def cli_json(*args):
    """The CLI's --json document of `recalign ARGS --json --quiet` (skips without the CLI)."""
    if not CLI or not os.path.exists(CLI):
        pytest.skip("RECALIGN_CLI is not set (the python suite sets it when tools are built)")
    out = subprocess.run([CLI] + [str(a) for a in args] + ["--json", "--quiet"], check=True, capture_output=True,
                         text=True)
    return json.loads(out.stdout)

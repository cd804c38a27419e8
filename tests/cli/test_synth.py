"""recalign-synth (tools/synth): the synthetic 1/f² image generator of the high-D benchmarks.

Checked against NumPy's FFT (power spectrum slope), PIL (box downsampling) and
scikit-learn (where the classes are separable), not against our own code.
"""
import json
import os
import subprocess

import numpy as np
import pytest

SYNTH = os.environ.get("RECALIGN_SYNTH", "build/tools/synth/recalign-synth")


def synth(tmp, name, *args):
    images, labels = os.path.join(tmp, name + ".u8"), os.path.join(tmp, name + ".idx")
    if "--labels-npy" in args:
        args = tuple(a for a in args if a != "--labels-npy")
        labels = os.path.join(tmp, name + ".npy")
    r = subprocess.run([SYNTH, "--output", images, "--labels", labels, *args], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    x = np.fromfile(images, np.uint8)
    if labels.endswith(".npy"):
        y = np.load(labels)
    else:
        raw = np.fromfile(labels, np.uint8)
        assert raw[:2].tolist() == [0, 0] and raw[2] in (8, 11) and raw[3] == 1
        y = raw[8:] if raw[2] == 8 else raw[8:].view(">i2")
        assert int.from_bytes(raw[4:8].tobytes(), "big") == y.size
    return x.reshape(y.size, -1), y


# SHA-256 of the images of earlier versions (892520e's generator, whose last step was one scalar
# loop): the data sets measured in BENCHMARKS.md and the README are reproducible by later builds.
# 7x5x2 has D = 70 (a tail after the last 4- and 8-value groups), 28x28x1 one channel.
EARLIER_IMAGES = {
    ("7", "5", "2", "3"): "aa822dec7ff6a2d8328be7dccab1875dc4259e990f9af3ff8aede7e58d9cc169",
    ("28", "28", "1", "10"): "80867a34dbdc4a6f326c24b3bcf0354837dbb21fc38e963d0fa86d5fa51331a2",
    ("32", "32", "3", "10"): "6a921748c98def80c1f4ca131b6e7dfc7bc2632f9ff9c9c7a69d4fab4f4f2bef",
}


@pytest.mark.parametrize("shape", sorted(EARLIER_IMAGES))
def test_images_are_those_of_earlier_versions(tmp, shape):
    import hashlib
    h, w, c, classes = shape
    x, _ = synth(tmp, "pinned", "--rows", "700", "--height", h, "--width", w, "--channels", c,
                 "--classes", classes, "--seed", "5")
    assert hashlib.sha256(x.tobytes()).hexdigest() == EARLIER_IMAGES[shape]


def test_rows_depend_only_on_seed_and_index(tmp):
    x, y = synth(tmp, "all", "--rows", "20", "--height", "12", "--width", "10", "--seed", "5")
    a, ya = synth(tmp, "a", "--rows", "7", "--height", "12", "--width", "10", "--seed", "5", "--labels-npy")
    b, yb = synth(tmp, "b", "--rows", "13", "--first-row", "7", "--height", "12", "--width", "10", "--seed", "5")
    assert x.shape == (20, 360) and np.array_equal(np.vstack([a, b]), x) and np.array_equal(np.concatenate([ya, yb]), y)
    other, _ = synth(tmp, "other", "--rows", "20", "--height", "12", "--width", "10", "--seed", "6")
    assert not np.array_equal(other, x)
    out = subprocess.run([SYNTH, "--output", "-", "--labels", os.path.join(tmp, "s.idx"), "--rows", "20",
                          "--height", "12", "--width", "10", "--seed", "5"], capture_output=True, check=True).stdout
    assert out == x.tobytes()


def test_power_spectrum_decays_like_one_over_f_squared(tmp):
    x, _ = synth(tmp, "spec", "--rows", "300", "--height", "64", "--width", "64", "--channels", "1")
    img = x.reshape(-1, 64, 64).astype(float)
    img -= img.mean(axis=(1, 2), keepdims=True)
    power = (np.abs(np.fft.fft2(img)) ** 2).mean(axis=0)
    f = np.hypot(np.fft.fftfreq(64)[:, None], np.fft.fftfreq(64)[None, :])
    band = (f >= 1 / 32) & (f <= 1 / 4)
    slope = np.polyfit(np.log(f[band]), np.log(power[band]), 1)[0]
    assert -2.2 < slope < -1.8, slope


@pytest.mark.parametrize("size,factor", [((64, 48), "4"), ((56, 28), "3.5")])
def test_downsample_is_pil_box_of_the_same_images(tmp, size, factor):
    from PIL import Image
    h, w = size
    full, y = synth(tmp, "full", "--rows", "6", "--height", str(h), "--width", str(w), "--seed", "2")
    small, ys = synth(tmp, "small", "--rows", "6", "--height", str(h), "--width", str(w), "--seed", "2",
                      "--downsample", factor)
    oh, ow = round(h / float(factor)), round(w / float(factor))
    assert np.array_equal(y, ys) and small.shape == (6, oh * ow * 3)
    direct = 0
    for i in range(6):
        # Area-weighted averaging by 3.5 is PIL's (integer) box by 7 of the image doubled
        # by pixel replication (PIL's BOX itself weights whole pixels by their centres).
        image = Image.fromarray(full[i].reshape(h, w, 3))
        direct = max(direct, np.abs(np.asarray(image.resize((ow, oh), Image.BOX)).astype(int) -
                                    small[i].reshape(oh, ow, 3).astype(int)).max())
        if factor == "3.5":
            image = image.resize((2 * w, 2 * h), Image.NEAREST)
        ref = np.asarray(image.resize((ow, oh), Image.BOX))
        diff = np.abs(ref.astype(int) - small[i].reshape(oh, ow, 3).astype(int))
        assert diff.max() <= 1  # PIL rounds its fixed-point sums its own way
    # What --help says: PIL's BOX itself for a whole F, not for a fractional one.
    assert (direct <= 1) == (factor == "4"), direct
    usage = " ".join(subprocess.run([SYNTH, "--help"], capture_output=True, text=True, check=True).stdout.split())
    assert "whole F this is PIL's Image.BOX (to 1 grey level); for a fractional F it is not" in usage


def test_classes_separate_only_in_low_variance_directions(tmp):
    from sklearn.decomposition import PCA
    from sklearn.discriminant_analysis import LinearDiscriminantAnalysis
    x, y = synth(tmp, "sep", "--rows", "3000", "--height", "64", "--width", "64", "--downsample", "4")
    x = x.astype(float)
    train, test = slice(0, 2000), slice(2000, 3000)
    z = PCA().fit(x[train]).transform(x)
    accuracy = {k: LinearDiscriminantAnalysis().fit(z[train, :k], y[train]).score(z[test, :k], y[test])
                for k in (16, 768)}
    assert accuracy[16] < 0.2 and accuracy[768] > 0.8, accuracy  # chance is 0.1


def test_refused_before_writing(tmp):
    images, labels = os.path.join(tmp, "no.u8"), os.path.join(tmp, "no.idx")
    r = subprocess.run([SYNTH, "--output", images, "--labels", labels, "--rows", "3", "--height", "64",
                        "--width", "64", "--downsample", "3"], capture_output=True, text=True)
    assert r.returncode == 2 and "does not divide 64x64" in r.stderr and r.stderr.count("\n") == 1
    assert not os.path.exists(images) and not os.path.exists(labels)
    assert not [f for f in os.listdir(tmp) if f.startswith("no.")]


def test_a_thousand_classes_have_16_bit_labels(tmp):
    # ImageNet's 1,000 classes (issue 17's moonshot): labels above 255 are .npy '<u2' or IDX
    # type 0x0B; the images do not depend on the labels file's format; recalign reads both.
    args = ("--rows", "4000", "--height", "4", "--width", "4", "--classes", "1000", "--seed", "2")
    x, y = synth(tmp, "k", *args)
    xn, yn = synth(tmp, "kn", *args, "--labels-npy")
    assert yn.dtype == np.uint16 and np.array_equal(x, xn) and np.array_equal(y.astype(np.uint16), yn)
    assert yn.max() == 999 and len(np.unique(yn)) > 950  # about 1 - e^-4 of the classes drawn
    recalign = os.environ.get("RECALIGN_CLI", "build/tools/recalign/recalign")
    for labels in ("k.idx", "kn.npy"):
        r = subprocess.run([recalign, "align", "--images", os.path.join(tmp, "k.u8"), "--raw-shape", "4000,48",
                            "--labels", os.path.join(tmp, labels), "--json", "--quiet"],
                           capture_output=True, text=True)
        assert r.returncode == 0, r.stderr
        assert json.loads(r.stdout)["classes"] == 1000
    r = subprocess.run([SYNTH, "--output", os.path.join(tmp, "big.u8"), "--labels", os.path.join(tmp, "big.idx"),
                        "--rows", "3", "--height", "4", "--width", "4", "--classes", "40000"],
                       capture_output=True, text=True)
    assert r.returncode == 2 and "[1, 32767] with an IDX labels file" in r.stderr
    assert not os.path.exists(os.path.join(tmp, "big.u8"))

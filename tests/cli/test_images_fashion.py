"""Fashion-MNIST through the image readers gives the IDX route's statistics (issue 13):

* written as CIFAR-10 records (each 28x28 image centred in a 32x32 frame, gray in all three
  planes) and read back with --channels 1 --crop 28,28 (PIL's L of a gray pixel is the pixel;
  CenterCrop's offset is 2): the same rows in the same order, so the same JSON numbers bit
  for bit;
* written as a PNG image folder (class folders, file names in sample order): the same rows
  in class order, so bit for bit the IDX route over the rows in that order, and to rounding
  the IDX route in the original order.

Skipped (exit 77) without the data set."""
import gzip
import os

import numpy as np
import pytest
from PIL import Image

import cli_common as c

N = 3000
NUMBERS = ["n", "d", "classes", "eigenvalues", "alignment", "contributions", "normaliser", "skipped", "max_k"]


def read_idx(path):
    with gzip.open(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def fashion(fashion_mnist, tmp):
    images, labels = fashion_mnist
    x = read_idx(images)[:N]
    y = read_idx(labels)[:N]
    return x, y


def same_numbers(a, b, what):
    for k in NUMBERS:
        assert a[k] == b[k], f"{what}: {k} differs"


def test_cifar_records_give_the_idx_statistics_bit_for_bit(fashion, tmp):
    x, y = fashion
    frame = np.zeros((N, 32, 32), np.uint8)
    frame[:, 2:30, 2:30] = x
    path = os.path.join(tmp, "fashion.bin")
    with open(path, "wb") as f:
        for i in range(N):
            f.write(bytes([y[i]]) + np.repeat(frame[i][None], 3, 0).tobytes())
    xi, yi = os.path.join(tmp, "x.idx"), os.path.join(tmp, "y.idx")
    c.write_idx(xi, x)
    c.write_idx(yi, y)
    common = ["--scale", "1/255", "--batch", 500]
    a = c.run_json(["align", "--images", path, "--channels", 1, "--crop", "28,28"] + common)
    b = c.run_json(["align", "--images", xi, "--labels", yi] + common)
    same_numbers(a, b, "CIFAR records vs IDX")


def test_png_folder_gives_the_idx_statistics(fashion, tmp):
    x, y = fashion
    root = os.path.join(tmp, "folder")
    for i in range(N):
        d = os.path.join(root, f"class_{y[i]}")
        os.makedirs(d, exist_ok=True)
        Image.fromarray(x[i]).save(os.path.join(d, f"{i:05d}.png"))
    order = np.argsort(y, kind="stable")  # ImageFolder's order: by class, then by name
    xi, yi = os.path.join(tmp, "xo.idx"), os.path.join(tmp, "yo.idx")
    c.write_idx(xi, x[order])
    c.write_idx(yi, y[order])
    common = ["--scale", "1/255", "--batch", 500]
    a = c.run_json(["align", "--images", root, "--channels", 1] + common)
    b = c.run_json(["align", "--images", xi, "--labels", yi] + common)
    same_numbers(a, b, "PNG folder vs IDX in the folder's order")
    assert a["input"][0]["class_names"] == [f"class_{k}" for k in range(10)]
    xo, yo = os.path.join(tmp, "x.idx"), os.path.join(tmp, "y.idx")
    c.write_idx(xo, x)
    c.write_idx(yo, y)
    o = c.run_json(["align", "--images", xo, "--labels", yo] + common)
    c.assert_close(a["eigenvalues"][:50], o["eigenvalues"][:50], 1e-9, "eigenvalues, folder vs IDX order",
                   atol=1e-9 * o["eigenvalues"][0])
    c.assert_close(a["alignment"], o["alignment"], 1e-8, "alignment, folder vs IDX order", atol=1e-10)

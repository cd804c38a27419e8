"""recalign.ImageFolder / ImageList / Cifar (issue 13 item 8) against torchvision and PIL:
the sample order and class ids of torchvision.datasets.ImageFolder on a tree built to catch
ordering mistakes, the pixels of PIL + torchvision transforms, the same batches for any
number of threads, and hooks.track consuming the readers."""
import io
import os

import numpy as np
import pytest
from PIL import Image

import recalign

torchvision = pytest.importorskip("torchvision")
from torchvision import transforms  # noqa: E402
from torchvision.datasets import ImageFolder as TorchImageFolder  # noqa: E402

RNG = np.random.default_rng(7)


def png(path, h=6, w=5, mode="RGB"):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    shape = (h, w, 3) if mode == "RGB" else (h, w)
    Image.fromarray(RNG.integers(0, 256, shape).astype(np.uint8)).save(path, format="PNG")


@pytest.fixture(scope="module")
def tricky(tmp_path_factory):
    """Directory names that sort differently as paths than as a depth-first walk ('a-c' <
    'a/b' as strings), upper-case extensions, files that are not images, a hidden class,
    a symbolic link to a directory, a file in the root (ignored), non-ASCII names."""
    root = str(tmp_path_factory.mktemp("tricky"))
    for rel in ["B/x.png", "B/a/b/1.png", "B/a-c/2.PNG", "B/a/0.png", "B/a.png", "B/Z.png", "B/é.png",
                "a/only.jpeg.png", "a/deep/er/est/q.png", ".hidden/h.png", "c_d/k.png", "c_d/k.png.txt"]:
        png(os.path.join(root, rel))
    with open(os.path.join(root, "B", "notes.txt"), "w") as f:
        f.write("not an image")
    png(os.path.join(root, "stray.png"))
    os.symlink(os.path.join(root, "B", "a"), os.path.join(root, "c_d", "linked"))
    return root


def test_order_and_class_ids_are_torchvision_s(tricky):
    ours = recalign.ImageFolder(tricky, crop=(4, 4))
    theirs = TorchImageFolder(tricky)
    assert ours.classes == theirs.classes
    assert [(p, y) for p, y in ours.samples] == [(p, y) for p, y in theirs.samples]
    assert len(ours) == len(theirs.samples)


def rows(paths, mode, resize, crop, layout):
    out = []
    for p in paths:
        img = Image.open(p).convert(mode)
        if resize:
            img = transforms.Resize(resize)(img)
        if crop:
            img = transforms.CenterCrop(crop)(img)
        a = np.asarray(img)
        a = a[:, :, None] if a.ndim == 2 else a
        out.append((a.transpose(2, 0, 1) if layout == "chw" else a).reshape(-1))
    return np.array(out, dtype=np.uint8)


def test_batches_are_pil_and_torchvision_pixels(tmp_path):
    root = str(tmp_path)
    for i in range(11):
        png(os.path.join(root, f"c{i % 3}", f"{i:02d}.png"), 9 + i % 4, 12 - i % 3, "RGB" if i % 2 else "L")
    theirs = TorchImageFolder(root)
    for channels, mode, layout in [(3, "RGB", "hwc"), (1, "L", "chw"), (3, "RGB", "chw")]:
        for threads in (1, 3):
            data = recalign.ImageFolder(root, channels=channels, resize=7, crop=(5, 6), layout=layout, batch=4,
                                        threads=threads)
            got = list(data)
            assert [len(x) for x, _ in got] == [4, 4, 3]
            x = np.concatenate([b[0] for b in got])
            y = np.concatenate([b[1] for b in got])
            assert x.dtype == np.uint8 and y.dtype == np.int64
            np.testing.assert_array_equal(x, rows([p for p, _ in theirs.samples], mode, 7, (5, 6), layout))
            np.testing.assert_array_equal(y, [c for _, c in theirs.samples])
            assert data.dim == 5 * 6 * channels


def test_track_consumes_the_readers(tmp_path):
    root = str(tmp_path / "f")
    for i in range(10):
        png(os.path.join(root, f"k{i % 2}", f"{i}.png"), 8, 8)
    data = recalign.ImageFolder(root, batch=3)
    acc = recalign.track(data, recalign.MomentAccumulator(data.dim, classes=len(data.classes)))
    ref = recalign.MomentAccumulator(data.dim, classes=2)
    for x, y in data:  # a second iteration starts again from the first sample
        ref.update(x, y)
    assert acc.n == 10 and acc.to_bytes() == ref.to_bytes()
    lst = tmp_path / "list.txt"
    lst.write_text("".join(f"{os.path.relpath(p, root)}\t{data.classes[y]}\textra\n" for p, y in data.samples))
    listed = recalign.ImageList(str(lst), root=root, batch=3)
    assert listed.classes == data.classes
    for (a, ya), (b, yb) in zip(listed, data):
        np.testing.assert_array_equal(a, b)
        np.testing.assert_array_equal(ya, yb)
    # A validation list of class k1 only keeps the folder's id 1 with classes_from.
    only = tmp_path / "k1.txt"
    only.write_text("".join(f"{os.path.relpath(p, root)} k1\n" for p, y in data.samples if y == 1))
    assert [y for _, y in recalign.ImageList(str(only), root=root).samples] == [0] * 5
    kept = recalign.ImageList(str(only), root=root, classes_from=root)
    assert kept.classes == ["k0", "k1"] and [y for _, y in kept.samples] == [1] * 5


def test_cifar(tmp_path):
    n = 7
    px = RNG.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
    path = str(tmp_path / "test.bin")
    with open(path, "wb") as f:
        for i in range(n):
            f.write(bytes([i % 20, (3 * i) % 100]) + px[i].tobytes())
    coarse = recalign.Cifar(path, label_kind="coarse", batch=5)
    assert coarse.format == "cifar100" and coarse.num_classes == 20
    x, y = next(iter(coarse))
    np.testing.assert_array_equal(x, px[:5].transpose(0, 2, 3, 1).reshape(5, -1))
    np.testing.assert_array_equal(y, np.arange(5) % 20)
    fine = recalign.Cifar([path, path], layout="chw", batch=100)
    x, y = next(iter(fine))
    np.testing.assert_array_equal(x, np.concatenate([px, px]).reshape(2 * n, -1))
    np.testing.assert_array_equal(y, np.tile((3 * np.arange(n)) % 100, 2))


def test_unreadable_files(tmp_path):
    root = str(tmp_path)
    for i in range(4):
        png(os.path.join(root, "a", f"{i}.png"), 4, 4)
    with open(os.path.join(root, "a", "2.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(ValueError, match=r"sample 2: .*2\.png.*in Python skip_unreadable=True, skips such files"):
        list(recalign.ImageFolder(root))
    data = recalign.ImageFolder(root, skip_unreadable=True, batch=2)
    assert sum(len(x) for x, _ in data) == 3
    assert [(i, os.path.basename(p)) for i, p, _ in data.skipped_files] == [(2, "2.png")]
    # A batch whose every file is skipped is not yielded as an empty one (its files recorded).
    with open(os.path.join(root, "a", "3.png"), "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    for batch in (1, 3):  # the last batch (3.png) or the middle one (2.png) is all skipped
        data = recalign.ImageFolder(root, skip_unreadable=True, batch=batch)
        assert [len(x) for x, _ in data] == ([1, 1] if batch == 1 else [2]), batch
        assert [os.path.basename(p) for _, p, _ in data.skipped_files] == ["2.png", "3.png"], batch

"""End-to-end tests of the image readers (issue 13): image folders, list files and CIFAR
records through the CLI, on images generated here with PIL.

* the rows are what PIL + torchvision make of the files (Image.open(f).convert(mode),
  Resize(S), CenterCrop((h, w)), flattened HWC or CHW): the tool's exact moments equal a
  NumPy computation on those rows (to rounding), for a folder, a list file naming the same
  files, and CIFAR records;
* 1, 2 and 4 decoding threads print the same bytes;
* corrupt, truncated and non-image files, wrong CIFAR record lengths, empty class folders,
  a folder without class folders, a symbolic link loop, an unreadable directory and images
  of different sizes: exit 2, one line naming the file (and the sample);
  --skip-unreadable lists them (skipped_files) and gives the statistics without them;
* a checkpointed folder run killed with SIGKILL resumes to the same bytes; an image touched,
  added or removed since refuses the resume, naming it.
"""
import io
import json
import os
import shutil
import signal
import subprocess
import tempfile
import time

import numpy as np
import pytest
from PIL import Image

import cli_common as c

RNG = np.random.default_rng(20261130)
CLASSES = ["ant", "bee", "cat"]


def image_bytes(arr, fmt, **kw):
    b = io.BytesIO()
    Image.fromarray(arr).save(b, format=fmt, **kw)
    return b.getvalue()


def smooth_image(h, w, mode="RGB"):
    """A smooth random image (JPEG keeps it close; PNG keeps it exactly)."""
    y, x = np.mgrid[0:h, 0:w]
    chans = []
    for _ in range(3 if mode == "RGB" else 1):
        a, b, p = RNG.uniform(0.05, 0.4, 3)
        chans.append(127 + 100 * np.sin(a * x + b * y + p * 6))
    arr = np.clip(np.stack(chans, -1) + RNG.normal(0, 8, (h, w, len(chans))), 0, 255).astype(np.uint8)
    return arr if mode == "RGB" else arr[:, :, 0]


def write_folder(root, per_class, sizes, fmt="PNG"):
    """ROOT/<class>/img_<i>.<ext> (some in a nested directory). Returns the paths in
    torchvision's order with their class ids."""
    samples = []
    for ci, cls in enumerate(CLASSES):
        for i in range(per_class):
            sub = os.path.join(root, cls, "nested") if i % 4 == 3 else os.path.join(root, cls)
            os.makedirs(sub, exist_ok=True)
            h, w = sizes[(ci * per_class + i) % len(sizes)]
            ext = "png" if fmt == "PNG" else "jpg"
            path = os.path.join(sub, f"img_{i:03d}.{ext}")
            with open(path, "wb") as f:
                f.write(image_bytes(smooth_image(h, w), fmt, **({"quality": 90} if fmt == "JPEG" else {})))
    # torchvision.datasets.ImageFolder is the reference for the order (tests/python checks
    # it against the library in detail); here it gives the rows NumPy computes from.
    from torchvision.datasets import ImageFolder
    return ImageFolder(root).samples


def rows_of(samples, mode="RGB", resize=0, crop=None, layout="hwc"):
    from torchvision import transforms
    out = []
    for path, _ in samples:
        img = Image.open(path).convert(mode)
        if resize:
            img = transforms.Resize(resize)(img)
        if crop:
            img = transforms.CenterCrop(crop)(img)
        a = np.asarray(img, dtype=np.uint8)
        if a.ndim == 2:
            a = a[:, :, None]
        out.append((a.transpose(2, 0, 1) if layout == "chw" else a).reshape(-1))
    return np.array(out, dtype=np.float64)


def uncentered_eigenvalues(x):
    return np.sort(np.linalg.eigvalsh(x.T @ x))[::-1]


def input_of(j):
    return j["input"][0]


@pytest.fixture(scope="module")
def folder(tmp):
    root = os.path.join(tmp, "folder")
    samples = write_folder(root, 8, [(12, 10), (9, 14), (16, 16)])
    return root, samples


def test_folder_geometry_matches_pil_and_torchvision(folder):
    root, samples = folder
    for mode, channels, layout in [("RGB", 3, "hwc"), ("L", 1, "hwc"), ("RGB", 3, "chw")]:
        j = c.run_json(["spectrum", "--images", root, "--resize", 8, "--crop", "6,7", "--channels", channels,
                        "--layout", layout, "--no-center"])
        x = rows_of(samples, mode, 8, (6, 7), layout)
        assert j["d"] == x.shape[1] and j["n"] == len(samples)
        c.assert_close(j["eigenvalues"], uncentered_eigenvalues(x)[: len(j["eigenvalues"])], 1e-9,
                       f"eigenvalues, {mode} {layout}", atol=1e-6 * uncentered_eigenvalues(x)[0])
        assert input_of(j)["format"] == "folder" and input_of(j)["class_names"] == CLASSES


def test_labels_and_class_names_travel(folder):
    root, samples = folder
    j = c.run_json(["align", "--images", root, "--crop", "8,8"])
    assert j["classes"] == len(CLASSES) and input_of(j)["class_names"] == CLASSES
    assert j["n"] == len(samples)


def test_threads_give_identical_output(folder):
    root, _ = folder
    outs = {c.run(["align", "--images", root, "--resize", 10, "--crop", "9,9", "--batch", 5, "--threads", t,
                   "--json", "--quiet"], check_rc=0)[1] for t in (1, 2, 4)}
    assert len(outs) == 1, "1, 2 and 4 threads printed different JSON"


def test_list_file_equals_folder(folder, tmp):
    root, samples = folder
    # TinyImageNet's val_annotations.txt: tab-separated, class names, extra columns.
    lst = os.path.join(tmp, "val_annotations.txt")
    with open(lst, "w") as f:
        for path, label in samples:
            f.write(f"{os.path.relpath(path, root)}\t{CLASSES[label]}\t0\t1\t2\t3\n")
    a = c.run_json(["align", "--images", lst, "--root", root, "--crop", "8,8"])
    b = c.run_json(["align", "--images", root, "--crop", "8,8"])
    assert a["alignment"] == b["alignment"] and a["eigenvalues"] == b["eigenvalues"]
    assert input_of(a)["format"] == "list" and input_of(a)["class_names"] == CLASSES
    # Integer labels, space-separated, relative to the list's own directory.
    lst2 = os.path.join(root, "list.txt")
    with open(lst2, "w") as f:
        f.write("# relative/path label\n")
        for path, label in samples:
            f.write(f"{os.path.relpath(path, root)} {label}\n")
    d = c.run_json(["align", "--images", lst2, "--format", "list", "--crop", "8,8"])
    assert d["alignment"] == b["alignment"]


def test_classes_from_keeps_the_training_ids(folder, tmp):
    # A validation list without class "ant": sorted names alone would number bee, cat as 0, 1;
    # --classes-from the training folder (ImageFolder's ids) or a names file keeps theirs.
    root, samples = folder
    lst = os.path.join(tmp, "val_no_ant.txt")
    with open(lst, "w") as f:
        for path, label in samples:
            if label != 0:
                f.write(f"{os.path.relpath(path, root)}\t{CLASSES[label]}\n")
    plain = c.run_json(["align", "--images", lst, "--root", root, "--crop", "8,8"])
    assert input_of(plain)["class_names"] == ["bee", "cat"] and plain["classes"] == 2
    kept = c.run_json(["align", "--images", lst, "--root", root, "--classes-from", root, "--crop", "8,8"])
    assert input_of(kept)["class_names"] == CLASSES and kept["classes"] == 3
    # The alignment does not depend on the class ids (an empty class adds nothing).
    c.assert_close(kept["alignment"], plain["alignment"], 1e-12, "empty class")
    names = os.path.join(tmp, "wnids.txt")
    with open(names, "w") as f:
        f.write("# one per line, in id order\ncat\nbee\n\nant\n")
    order = c.run_json(["align", "--images", lst, "--root", root, "--classes-from", names, "--crop", "8,8"])
    assert input_of(order)["class_names"] == ["cat", "bee", "ant"]
    # Refused before any pixel is read, naming the file and line.
    with open(names, "w") as f:
        f.write("cat\nant\n")
    rc, _, err = c.run(["align", "--images", lst, "--root", root, "--classes-from", names, "--crop", "8,8"])
    assert rc == 2 and "val_no_ant.txt" in err and "class 'bee' is not among the names of --classes-from" in err
    with open(names, "w") as f:
        f.write("cat\nbee\ncat\n")
    rc, _, err = c.run(["align", "--images", lst, "--root", root, "--classes-from", names])
    assert rc == 2 and "line 3: class 'cat' is named twice (first on line 1)" in err
    rc, _, err = c.run(["align", "--images", root, "--classes-from", root])
    assert rc == 2 and "--classes-from applies to list files" in err
    ids = os.path.join(tmp, "ids.txt")
    with open(ids, "w") as f:
        f.write(f"{os.path.relpath(samples[0][0], root)} 3\n")
    rc, _, err = c.run(["align", "--images", ids, "--root", root, "--classes-from", root])
    assert rc == 2 and "line 1: label 3 is not below the 3 classes of --classes-from" in err


def test_merge_refuses_other_decoding_or_classes(folder, tmp):
    root, samples = folder
    ck = {k: os.path.join(tmp, f"m_{k}.ckpt") for k in ("a", "b", "c", "d")}
    c.run(["spectrum", "--images", root, "--crop", "8,8", "--checkpoint", ck["a"], "--quiet"], check_rc=0)
    c.run(["spectrum", "--images", root, "--resize", "10", "--crop", "8,8", "--checkpoint", ck["b"], "--quiet"],
          check_rc=0)
    _, text, _ = c.run(["info", ck["a"]], check_rc=0)
    assert "decoding      channels=3" in text and "classes       3 named: ant bee cat (all in --json)" in text
    info = json.loads(c.run(["info", ck["b"], "--json"], check_rc=0)[1])
    assert info["segments"][0]["class_names"] == CLASSES and "resize=10" in info["segments"][0]["decoding"]
    out = os.path.join(tmp, "m_out.ckpt")
    rc, _, err = c.run(["merge", ck["a"], ck["b"], "-o", out])
    assert rc == 2 and "decoded with" in err and "resize=10" in err and not os.path.exists(out)
    lst = os.path.join(tmp, "m_list.txt")
    with open(lst, "w") as f:
        for path, label in samples:
            if label != 0:
                f.write(f"{os.path.relpath(path, root)}\t{CLASSES[label]}\n")
    names = os.path.join(tmp, "m_names.txt")
    with open(names, "w") as f:
        f.write("cat\nbee\nant\n")  # three classes, as the folder, in another order
    c.run(["align", "--images", lst, "--root", root, "--classes-from", names, "--crop", "8,8", "--checkpoint", ck["c"],
           "--quiet"], check_rc=0)
    c.run(["align", "--images", root, "--crop", "8,8", "--checkpoint", ck["d"], "--quiet"], check_rc=0)
    rc, _, err = c.run(["merge", ck["d"], ck["c"], "-o", out])
    assert rc == 2 and "class names (3, first 'cat') differ" in err and not os.path.exists(out)


def test_several_folders_are_one_stream(folder, tmp):
    root, samples = folder
    j1 = c.run_json(["spectrum", "--images", root, "--images", root, "--crop", "8,8", "--no-center"])
    j2 = c.run_json(["spectrum", "--images", root, "--crop", "8,8", "--no-center"])
    assert j1["n"] == 2 * j2["n"]
    c.assert_close(j1["eigenvalues"], 2 * np.array(j2["eigenvalues"]), 1e-12, "twice the folder")


def test_cifar_records(tmp):
    n = 37
    labels = RNG.integers(0, 10, n).astype(np.uint8)
    px = RNG.integers(0, 256, (n, 3, 32, 32)).astype(np.uint8)
    path = os.path.join(tmp, "data_batch_1.bin")
    with open(path, "wb") as f:
        for i in range(n):
            f.write(bytes([labels[i]]) + px[i].tobytes())
    j = c.run_json(["spectrum", "--images", path, "--method", "fd", "--rank", 1])
    assert j["d"] == 3072 and j["n"] == n and input_of(j)["format"] == "cifar10"
    # A centre crop keeps D small (the exact route's eigendecomposition): offset (32 - 8) / 2 = 12.
    crops = {"hwc": px.transpose(0, 2, 3, 1)[:, 12:20, 12:20, :], "chw": px[:, :, 12:20, 12:20]}
    for layout, x in crops.items():
        j = c.run_json(["spectrum", "--images", path, "--layout", layout, "--no-center", "--crop", "8,8"])
        assert j["d"] == 192 and j["n"] == n
        ev = uncentered_eigenvalues(x.reshape(n, -1).astype(np.float64))
        c.assert_close(j["eigenvalues"], ev, 1e-9, f"CIFAR eigenvalues ({layout})", atol=1e-12 * ev[0])
    j = c.run_json(["align", "--images", path, "--images", path, "--crop", "4,4"])
    assert j["classes"] == 10 and j["n"] == 2 * n
    # CIFAR-100: coarse (first byte) and fine (second) labels.
    p100 = os.path.join(tmp, "train.bin")
    with open(p100, "wb") as f:
        for i in range(n):
            f.write(bytes([i % 20, i % 100]) + px[i].tobytes())
    assert c.run_json(["align", "--images", p100, "--format", "cifar100", "--label-kind", "coarse", "--crop", "4,4"])[
        "classes"] == 20
    assert c.run_json(["align", "--images", p100, "--format", "cifar100", "--crop", "4,4"])["classes"] == 100
    # A record cut short: exit 2 naming the file.
    bad = os.path.join(tmp, "cut.bin")
    with open(bad, "wb") as f:
        f.write(open(path, "rb").read()[:-5])
    rc, _, err = c.run(["spectrum", "--images", bad, "--format", "cifar10", "--quiet"])
    assert not c.one_line_problems(rc, err, [bad, "records"], "cut CIFAR file")
    # A label out of range (not a CIFAR-10 record): exit 2 naming the file and offset.
    wrong = os.path.join(tmp, "wrong.bin")
    with open(wrong, "wb") as f:
        f.write(bytes([200]) + px[0].tobytes())
    rc, _, err = c.run(["align", "--images", wrong, "--format", "cifar10", "--quiet"])
    assert not c.one_line_problems(rc, err, [wrong, "label 200"], "CIFAR label")


@pytest.fixture(scope="module")
def broken(tmp):
    """A folder with a truncated JPEG, a corrupt PNG and a text file named .png."""
    root = os.path.join(tmp, "broken")
    samples = write_folder(root, 5, [(10, 10)], fmt="JPEG")
    good = list(samples)
    jpg = samples[2][0]
    data = open(jpg, "rb").read()
    with open(jpg, "wb") as f:
        f.write(data[: len(data) // 2])
    png = os.path.join(root, "bee", "zz_corrupt.png")
    body = image_bytes(smooth_image(10, 10), "PNG")
    with open(png, "wb") as f:
        f.write(body[:40] + bytes(len(body) - 40))
    txt = os.path.join(root, "cat", "notes.png")
    with open(txt, "w") as f:
        f.write("not an image\n")
    from torchvision.datasets import ImageFolder
    all_samples = ImageFolder(root).samples
    bad = {jpg, png, txt}
    return root, all_samples, [s for s in all_samples if s[0] not in bad], [s for s in all_samples if s[0] in bad]


def test_unreadable_files_stop_the_run_naming_file_and_sample(broken):
    root, all_samples, _, bad = broken
    rc, _, err = c.run(["align", "--images", root, "--quiet"])
    first = next(i for i, s in enumerate(all_samples) if s in bad)
    assert not c.one_line_problems(rc, err, [all_samples[first][0], f"sample {first}"], "truncated JPEG")


def test_skip_unreadable_lists_and_leaves_them_out(broken, tmp):
    root, all_samples, good, bad = broken
    j = c.run_json(["align", "--images", root, "--skip-unreadable", "--batch", 4])
    skipped = input_of(j)["skipped_files"]
    assert [s["path"] for s in skipped] == [p for p, _ in all_samples if (p, _) in bad]
    assert [s["index"] for s in skipped] == [i for i, s in enumerate(all_samples) if s in bad]
    assert all(s["reason"] for s in skipped)
    assert j["n"] == len(good)
    ck = os.path.join(tmp, "skipped.ckpt")
    c.run(["spectrum", "--images", root, "--skip-unreadable", "--checkpoint", ck, "--quiet"], check_rc=0)
    assert f"skipped       {len(bad)} unreadable files" in c.run(["info", ck], check_rc=0)[1]
    info = json.loads(c.run(["info", ck, "--json"], check_rc=0)[1])
    assert [s["path"] for s in info["segments"][0]["skipped_files"]] == [s["path"] for s in skipped]
    # The same statistics as a list of the good files alone.
    lst = os.path.join(tmp, "good.txt")
    with open(lst, "w") as f:
        for p, label in good:
            f.write(f"{os.path.relpath(p, root)} {label}\n")
    g = c.run_json(["align", "--images", lst, "--root", root, "--batch", 4])
    # Other batch boundaries: the same sums to rounding.
    c.assert_close(j["eigenvalues"], g["eigenvalues"], 1e-9, "eigenvalues without the unreadable files",
                   atol=1e-12 * g["eigenvalues"][0])
    c.assert_close(j["alignment"], g["alignment"], 1e-9, "alignment without the unreadable files", atol=1e-12)


def test_stopped_run_resumes_with_skip_unreadable(broken, tmp):
    """A checkpointed run stopped by an unreadable file keeps its last checkpoint (exit 2,
    the file untouched) and continues past the file with --skip-unreadable added, to the
    output of a run that skipped from the start; dropping the flag again is refused."""
    root, all_samples, good, bad = broken
    first = next(i for i, s in enumerate(all_samples) if s in bad)
    assert first >= 2, "the broken tree must have a checkpoint before its first unreadable file"
    ck = os.path.join(tmp, "stopped.ckpt")
    args = ["align", "--images", root, "--batch", 1, "--json", "--quiet", "--checkpoint", ck]
    rc, _, err = c.run(args + ["--checkpoint-every", 1])
    assert not c.one_line_problems(rc, err, [all_samples[first][0], f"sample {first}"], "stopped run")
    before = open(ck, "rb").read()
    assert json.loads(c.run(["info", ck, "--json"], check_rc=0)[1])["segments"][0]["rows_done"] == first
    rc, _, err = c.run(args + ["--resume"])
    assert rc == 2 and open(ck, "rb").read() == before
    out = c.run(args + ["--resume", "--skip-unreadable"], check_rc=0)[1]
    reference = c.run(["align", "--images", root, "--batch", 1, "--json", "--quiet", "--skip-unreadable"],
                      check_rc=0)[1]
    assert out == reference
    rc, _, err = c.run(args + ["--resume"])
    assert not c.one_line_problems(rc, err, ["--skip-unreadable"], "skip flag dropped on resume")


def test_folder_refusals(tmp):
    def refused(args, expect, what):
        rc, _, err = c.run(list(args) + ["--quiet"])
        problems = c.one_line_problems(rc, err, expect, what)
        assert not problems, problems

    empty = os.path.join(tmp, "empty_class")
    write_folder(empty, 2, [(8, 8)])
    os.makedirs(os.path.join(empty, "dog"))
    with open(os.path.join(empty, "dog", "readme.txt"), "w") as f:
        f.write("no image here")
    refused(["spectrum", "--images", empty], [empty, "dog", "without an image"], "empty class folder")
    no_class = os.path.join(tmp, "no_class")
    os.makedirs(no_class)
    Image.fromarray(smooth_image(8, 8)).save(os.path.join(no_class, "a.png"))
    refused(["spectrum", "--images", no_class], [no_class, "no class folder"], "folder without class folders")
    loop = os.path.join(tmp, "loop")
    write_folder(loop, 2, [(8, 8)])
    os.symlink("..", os.path.join(loop, "ant", "again"))
    refused(["spectrum", "--images", loop], [os.path.join(loop, "ant", "again"), "loop"], "symbolic link loop")
    sizes = os.path.join(tmp, "sizes")
    samples = write_folder(sizes, 2, [(8, 8), (8, 9)])
    second = next(p for p, _ in samples if Image.open(p).size != Image.open(samples[0][0]).size)
    refused(["spectrum", "--images", sizes], [second, "--resize"], "images of different sizes")
    refused(["spectrum", "--images", sizes, "--threads", 2, "--crop", "0,3"], ["--crop"], "one-sided crop")
    refused(["spectrum", "--images", sizes, "--format", "list"], [sizes, "directory"], "a folder read as a list")
    assert c.run_json(["spectrum", "--images", sizes, "--crop", "5"])["d"] == 75  # S = S,S
    idx = os.path.join(tmp, "x.idx")
    c.write_idx(idx, np.zeros((3, 4), np.uint8))
    refused(["spectrum", "--images", idx, "--resize", 8], ["--resize", "idx"], "geometry of an IDX file")


def test_unreadable_directory(tmp):
    """Root reads every directory: the tool runs as user nobody here (setpriv), on a tree
    only that user can reach; skipped where setpriv or nobody are not available."""
    if os.geteuid() != 0:
        base = tempfile.mkdtemp(prefix="recalign_perm_")
        cmd_prefix = []
    else:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv missing: cannot drop root's right to read every directory")
        base = tempfile.mkdtemp(prefix="recalign_perm_", dir="/tmp")
        os.chmod(base, 0o755)
        cmd_prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    try:
        root = os.path.join(base, "tree")
        write_folder(root, 2, [(8, 8)])
        for d, _, files in os.walk(root):
            os.chmod(d, 0o755)
            for f in files:
                os.chmod(os.path.join(d, f), 0o644)
        locked = os.path.join(root, "bee", "nested")
        os.makedirs(locked, exist_ok=True)
        os.chmod(locked, 0)
        p = subprocess.run(cmd_prefix + [c.RECALIGN, "spectrum", "--images", root, "--quiet"], capture_output=True)
        err = p.stderr.decode()
        if cmd_prefix and "Operation not permitted" in err:
            pytest.skip(f"setpriv cannot change user here: {err.strip()}")
        problems = c.one_line_problems(p.returncode, err, [locked, "Permission denied"], "unreadable directory")
        assert not problems, problems
    finally:
        for d, _, _ in os.walk(base):
            os.chmod(d, 0o755)
        shutil.rmtree(base, ignore_errors=True)


def test_kill_and_resume_then_touched_image_refuses(folder, tmp):
    root, samples = folder
    work = os.path.join(tmp, "resume_tree")
    shutil.copytree(root, work)
    ck = os.path.join(tmp, "images.ckpt")
    args = ["align", "--images", work, "--crop", "8,8", "--batch", 2, "--json", "--quiet"]
    reference = c.run(args, check_rc=0)[1]
    # SIGKILL once the first periodic checkpoint exists (each batch sleeps 150 ms).
    p = subprocess.Popen([c.RECALIGN] + [str(a) for a in args] +
                         ["--checkpoint", ck, "--checkpoint-every", "4", "--test-batch-delay-ms", "150"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 30
    while not os.path.exists(ck) and time.monotonic() < deadline and p.poll() is None:
        time.sleep(0.01)
    time.sleep(0.2)
    p.send_signal(signal.SIGKILL)
    p.wait()
    assert p.returncode == -signal.SIGKILL, "the run ended before it could be killed"
    done = json.loads(c.run(["info", ck, "--json"], check_rc=0)[1])["segments"][0]["rows_done"]
    assert 0 < done < len(samples)
    out = c.run(args + ["--checkpoint", ck, "--resume"], check_rc=0)[1]
    assert out == reference, "a killed and resumed folder run printed other bytes"
    # A resumed run refuses changed inputs, naming the file.
    os.remove(ck)
    p = subprocess.Popen([c.RECALIGN] + [str(a) for a in args] +
                         ["--checkpoint", ck, "--checkpoint-every", "4", "--test-batch-delay-ms", "100"],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    while not os.path.exists(ck) and p.poll() is None:
        time.sleep(0.01)
    p.send_signal(signal.SIGINT)  # checkpoint, exit 130
    p.wait()
    touched = samples[5][0].replace(root, work)
    st = os.stat(touched)
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns + 1000))
    rc, _, err = c.run(args + ["--checkpoint", ck, "--resume"])
    assert not c.one_line_problems(rc, err, [touched, "changed"], "touched image")
    os.utime(touched, ns=(st.st_atime_ns, st.st_mtime_ns))
    extra = os.path.join(work, "cat", "zzz_new.png")
    shutil.copy(samples[0][0], extra)
    rc, _, err = c.run(args + ["--checkpoint", ck, "--resume"])
    assert not c.one_line_problems(rc, err, [extra, "added"], "added image")
    os.remove(extra)
    removed = samples[1][0].replace(root, work)
    os.remove(removed)
    rc, _, err = c.run(args + ["--checkpoint", ck, "--resume"])
    assert not c.one_line_problems(rc, err, [removed, "removed"], "removed image")

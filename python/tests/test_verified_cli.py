"""The verified sketch analyses (recalign.verified) against the CLI: the same numbers, bit for
bit, on the same data in the same batches (recalign-synth images at D = 3,072 and a
Fashion-MNIST subset), the adaptive stops and refinement budgets as the CLI's, a torch
DataLoader driving every pass, and FD states begun with an earlier ℓ."""
import os
import struct

import numpy as np
import pytest

import recalign
from _verified_data import cli_json, synth_images, synthetic_batches


def same_document(cli, py, what):
    """The CLI's JSON document and the Python result's to_dict(), equal bit for bit (but for
    the CLI's description of its input files)."""
    if isinstance(cli, dict):
        cli = {k: v for k, v in cli.items() if k not in ("input", "scale")}
    else:  # tradeoff: a list of points, each with the run's input
        cli = [{k: v for k, v in point.items() if k != "input"} for point in cli]
    assert cli == py.to_dict(), what


def test_cli_parity_synthetic_3072(tmp_path):
    """recalign-synth output at D = 3,072 (32x32x3, 1/f² images): denoise (its refinement ended by
    the budget), align and tradeoff through the CLI and through Python on the same batches give
    the same documents bit for bit."""
    images, labels, x, y, data = synth_images(tmp_path, 400, 32)
    common = ["--images", images, "--raw-shape", "400,3072", "--labels", labels, "--classes", 10, "--batch", 100,
              "--method", "nystrom", "--rank", 48, "--passes", 2, "--seed", 3]
    # One masking noise: each of the 8 default --refine passes costs about 0.5 s of CPU per masking
    # noise here (two noise geometries in one span: test_cli_parity_fashion).
    noises = ["mask:patch=4x4,ratio=0.75,scheme=fixed", "gaussian:sigma=10"]
    cli = cli_json("denoise", *common, "--image-shape", "32,32,3", *[a for n in noises for a in ("--noise", n)])
    py = recalign.verified_denoise(data, noises, 10, shape=(32, 32, 3), rank=48, passes=2, seed=3)
    assert cli["exact_for"] == "returned subspaces" and cli["sketch_error"]["verified"] and cli["n"] == 400
    assert cli["sketch_error"]["verification_passes"] == 9  # the default --refine 8
    assert cli["sketch_error"]["refinement"]["stopped"] == "budget"  # the budget ends it here
    same_document(cli, py, "denoise")
    cli = cli_json("align", *common)
    same_document(cli, recalign.verified_align(data, 10, rank=48, passes=2, seed=3), "align")
    cli = cli_json("align", *common, "--tolerance", 0.99)
    assert cli["sketch_error"]["sketch_passes"] == 1 and cli["sketch_error"]["tolerance_met"]
    same_document(cli, recalign.verified_align(data, 10, rank=48, passes=2, seed=3, tolerance=0.99), "align tolerance")
    cli = cli_json("tradeoff", *common, "--lambda", "0,1", "--k", 5)
    same_document(cli, recalign.verified_tradeoff(data, [0, 1], 5, 10, rank=48, passes=2, seed=3), "tradeoff")


def test_interrupted_refinement_resumes_to_the_same_bits(tmp_path):
    """At D = 3,072 with rank 256 the checkpoint copies the carried Sxx R (rotated as it is read)
    in blocks that are not whole blocks of the rotation's 256 rows; OpenBLAS rounds a product's
    rows past a multiple of 8 otherwise, so until io::row_spill rotated every read on one grid a
    run resumed in a refinement pass ended in other last digits. Stopped in the first refinement
    pass (an exception from the batches) and resumed from its checkpoint: the one run's report."""
    _, _, _, _, data = synth_images(tmp_path, 400, 32)
    noises = ["mask:patch=8x8,ratio=0.75,scheme=fixed", "mask:patch=8x8,ratio=0.75"]
    options = dict(shape=(32, 32, 3), rank=256, refine=2)
    reference = recalign.verified_denoise(data, noises, 10, **options).to_dict()

    class Stop(Exception):
        pass

    passes = []

    def stopping():
        passes.append(len(passes) + 1)
        for i, batch in enumerate(data):
            if len(passes) == 4 and i == 2:  # 1, 2: the sketch; 3: verification; 4: the first refinement
                raise Stop
            yield batch

    ck = str(tmp_path / "refine.ckpt")
    with pytest.raises(Stop):
        recalign.verified_denoise(stopping, noises, 10, checkpoint=ck, every=2, **options)
    assert passes == [1, 2, 3, 4]
    resumed = recalign.verified_denoise(data, noises, 10, checkpoint=ck, every=2, resume=True, **options)
    assert resumed.to_dict() == reference


def test_cli_parity_fashion(fashion, tmp_path):
    """A Fashion-MNIST subset (1,000 images): align and tradeoff with FD, denoise with Nyström,
    CLI JSON against Python, bit for bit."""
    images, labels = fashion
    x, y = images[:1000], labels[:1000]
    xi, yi = str(tmp_path / "x.npy"), str(tmp_path / "y.npy")
    np.save(xi, x)
    np.save(yi, y)
    data = [(x[i:i + 250], y[i:i + 250]) for i in range(0, 1000, 250)]
    common = ["--images", xi, "--labels", yi, "--classes", 10, "--batch", 250]
    cli = cli_json("align", *common, "--method", "fd", "--rank", 30)
    same_document(cli, recalign.verified_align(data, 10, method="fd", rank=30), "align fd")
    cli = cli_json("tradeoff", *common, "--method", "fd", "--rank", 30, "--lambda", "0,1,10", "--k", 10)
    assert all(p["bound"] == "upper" and p["exact_for"] == "returned encoder" for p in cli)
    same_document(cli, recalign.verified_tradeoff(data, [0, 1, 10], 10, 10, method="fd", rank=30), "tradeoff fd")
    cli = cli_json("denoise", *common, "--image-shape", "28,28,1", "--method", "nystrom", "--rank", 40,
                   "--noise", "mask:patch=4x4,ratio=0.5", "--noise", "dropout:ratio=0.3", "--center")
    py = recalign.verified_denoise(data, ["mask:patch=4x4,ratio=0.5", "dropout:ratio=0.3"], 10, shape=(28, 28, 1),
                                   rank=40, center="centered")
    same_document(cli, py, "denoise centered")


def test_torch_dataloader_drives_every_pass(tmp_path):
    """A torch DataLoader is re-iterable: track() reads it once per pass and ends where the same
    batches as NumPy arrays end; a shuffling one with a checkpoint is refused before any row."""
    from conftest import torch_or_skip
    torch = torch_or_skip()
    data = synthetic_batches(240, 60)
    x = np.concatenate([b[0] for b in data])
    y = np.concatenate([b[1] for b in data])
    ds = torch.utils.data.TensorDataset(torch.from_numpy(x), torch.from_numpy(y))
    loader = torch.utils.data.DataLoader(ds, batch_size=60, shuffle=False)
    make = lambda: recalign.VerifiedAlignment(192, 5, method="nystrom", rank=12, passes=2)  # noqa: E731
    got = recalign.track(loader, make())
    assert got.pass_index == 2 and got.to_bytes() == recalign.track(data, make()).to_bytes()
    shuffled = torch.utils.data.DataLoader(ds, batch_size=60, shuffle=True,
                                           generator=torch.Generator().manual_seed(1))
    with pytest.raises(ValueError, match="several passes"):
        recalign.track(shuffled, make(), checkpoint=str(tmp_path / "a.ckpt"))
    assert not os.path.exists(tmp_path / "a.ckpt")


def test_tradeoff_adaptive_stop_as_the_cli(tmp_path):
    """400 synthetic 16x16x3 images (D = 768: two preconditioner blocks of 384, Sxx singular): the CG
    passes stop early, after the same pass as the CLI's --refine 8, to the same document bit for
    bit; the stopped state is `finished`, refuses next_pass(), and a checkpoint of it loads and
    resumes to the same result."""
    images, labels, x, y, data = synth_images(tmp_path, 400, 16)
    cli = cli_json("tradeoff", "--images", images, "--raw-shape", "400,768", "--labels", labels, "--classes", 10,
                   "--batch", 100, "--method", "nystrom", "--rank", 40, "--seed", 3, "--lambda", "0,1", "--k", 5,
                   "--refine", 8)
    done = cli[0]["refinement"]
    assert done["stopped"] == "converged" and done["passes"] < done["max_passes"] == 9
    checkpoint = tmp_path / "state.ckpt"
    state = recalign.track(data, recalign.VerifiedTradeoff(768, 10, [0, 1], 5, rank=40, seed=3, refine=8),
                           checkpoint=checkpoint)
    same_document(cli, state.report(), "tradeoff stopped")
    assert state.finished and state.pass_index == done["passes"] < state.total_passes - 1
    with pytest.raises(ValueError, match="adaptive stop"):
        state.next_pass()
    assert recalign.VerifiedTradeoff.load(checkpoint).report().to_dict() == state.report().to_dict()
    resumed = recalign.track(data, recalign.VerifiedTradeoff(768, 10, [0, 1], 5, rank=40, seed=3, refine=8),
                             checkpoint=checkpoint, resume=True)
    assert resumed.to_bytes() == state.to_bytes()


def test_denoise_adaptive_stop_as_the_cli(tmp_path):
    """500 synthetic 12x12x3 images (D = 432), rank 128: the incremental refinement passes stop
    adaptively after the same pass as the CLI's, to the same document bit for bit (and with rank
    96 on 8x8x3 the first restart has nothing new to read). The stopped state is `finished`,
    refuses next_pass(); checkpoints taken inside a refinement pass resume to the same bytes; a
    version 1 state (whose refinement passes re-read the whole span) loads before its refinement
    passes and is refused inside them."""
    runs = {}
    # rank 128, not 160: with the clean top refined too (3 x 64 more columns) rank 160's span is
    # all of R^432 after one refinement pass, which ends the passes before any estimate
    for h, rank in ((12, 128), (8, 96)):
        images, labels, x, y, data = synth_images(tmp_path, 500, h, name=f"s{h}")
        cli = cli_json("denoise", "--images", images, "--raw-shape", f"500,{h * h * 3}", "--labels", labels, "--classes",
                       10, "--batch", 100, "--method", "nystrom", "--rank", rank, "--passes", 2, "--seed", 3,
                       "--image-shape", f"{h},{h},3", "--noise", "mask:patch=2x2,ratio=0.75")
        make = lambda h=h, rank=rank: recalign.VerifiedDenoising(  # noqa: E731
            h * h * 3, 10, ["mask:patch=2x2,ratio=0.75"], shape=(h, h, 3), rank=rank, passes=2, seed=3)
        state = recalign.track(data, make())
        same_document(cli, state.report(), f"denoise {h}x{h}")
        runs[h] = cli["sketch_error"]["refinement"], data, make, state
    done, data, make, whole = runs[12]
    assert done["stopped"] == "converged" and 0 < done["passes"] < done["budget"] == 8
    assert done["change"] <= done["estimate"] < done["threshold"] == recalign._recalign.REFINEMENT_STOP == 5e-4
    assert runs[8][0]["stopped"] == "converged" and runs[8][0]["passes"] == 0 and runs[8][0]["change"] is None
    assert whole.finished and whole.pass_index == 2 + done["passes"] < whole.total_passes - 1
    with pytest.raises(ValueError, match="adaptive stop"):
        whole.next_pass()
    # interrupted in the second refinement pass (pass 4, after its 2nd batch), resumed
    ck, seen = str(tmp_path / "d.ckpt"), []

    def cut(batches):
        for b in batches:
            seen.append(1)
            if len(seen) == 4 * 5 + 3:
                raise KeyboardInterrupt
            yield b
    with pytest.raises(KeyboardInterrupt):
        recalign.track(lambda: cut(data), make(), checkpoint=ck, every=1)
    inside = recalign.VerifiedDenoising.load(ck)
    assert (inside.pass_index, inside.n) == (4, 200)
    resumed = recalign.track(lambda: iter(data), make(), checkpoint=ck, every=1, resume=True)
    assert resumed.to_bytes() == whole.to_bytes()
    assert recalign.VerifiedDenoising.load(ck).report().to_dict() == whole.report().to_dict()

    def version_1(state):  # the same state as this build's version 1 wrote it (no carried part)
        data_ = state.to_bytes()
        carried = len(state._refinement.to_bytes())
        return data_[:8] + (1).to_bytes(4, "little") + data_[12:len(data_) - 8 - carried]
    first = make()
    recalign.track(data, first, passes=3)  # in the first verification pass: the same in both versions
    assert recalign.VerifiedDenoising.from_bytes(version_1(first)).to_bytes() == first.to_bytes()
    with pytest.raises(recalign.FileError, match="version 1 state in refinement pass 2"):
        recalign.VerifiedDenoising.from_bytes(version_1(inside))


@pytest.mark.parametrize("refine", [0, 2])
def test_denoise_refine_budgets_as_the_cli(tmp_path, refine):
    """FD, two masking noises (one span for both) and a Gaussian one at D = 192: with no
    refinement pass (refine=0: the report still has its `refinement` object, budget 0) and with
    a budget of 2, the document is the CLI's bit for bit."""
    images, labels, x, _, data = synth_images(tmp_path, 300, 8)
    noises = ["mask:patch=2x2,ratio=0.5", "dropout:ratio=0.3", "gaussian:sigma=5"]
    cli = cli_json("denoise", "--images", images, "--raw-shape", "300,192", "--labels", labels, "--classes", 10,
                   "--batch", 100, "--method", "fd", "--rank", 30, "--image-shape", "8,8,3", "--refine", refine,
                   *[a for n in noises for a in ("--noise", n)])
    assert cli["sketch_error"]["refinement"]["budget"] == refine
    same_document(cli, recalign.verified_denoise(data, noises, 10, shape=(8, 8, 3), method="fd", rank=30,
                                                 refine=refine), f"denoise refine={refine}")


def test_fd_state_of_the_earlier_ell_resumes_with_it():
    """FD's ell went from min(2 rank, D) to min(3 rank, D) (frequent_directions_default_ell, as
    the CLI's): a state begun with the earlier ell continues with it. Rank 4's sketch (ell = 12)
    is the one an older build began for rank 6 (ell = 2 · 6): spliced into a rank-6 state, it
    loads, keeps ell = 12 to the end of the sketch pass (rank 4's shrinkage) and is verified."""
    data = synthetic_batches()
    assert recalign._recalign.frequent_directions_default_ell(6, 192) == 18
    assert recalign._recalign.frequent_directions_legacy_ell(6, 192) == 12
    six, four = (recalign.VerifiedAlignment(192, 5, method="fd", rank=r) for r in (6, 4))
    for st in (six, four):
        for xb, yb in data[:2]:
            st.update(xb, yb)

    def parts(b):  # (offset of part 0's u64 length, part 0's bytes)
        at = 16 + struct.unpack_from("<I", b, 12)[0]
        return at, b[at + 8:at + 8 + struct.unpack_from("<Q", b, at)[0]]

    b6, b4 = six.to_bytes(), four.to_bytes()
    at, fresh = parts(b6)
    _, legacy = parts(b4)
    forged = b6[:at] + struct.pack("<Q", len(legacy)) + legacy + b6[at + 8 + len(fresh):]
    st = recalign.VerifiedAlignment.from_bytes(forged)
    assert st._sketch.ell == 12 and six._sketch.ell == 18
    for xb, yb in data[2:]:
        st.update(xb, yb)
        four.update(xb, yb)
    assert st._sketch.shrinkage == four._sketch.shrinkage and st._sketch.n == four._sketch.n
    st.next_pass()
    for xb, yb in data:
        st.update(xb, yb)
    assert st.finished and st.report().sketch_error.verified
    # Any other ell (rank 5's 15) is refused as before.
    five = recalign.VerifiedAlignment(192, 5, method="fd", rank=5)
    other = parts(five.to_bytes())[1]
    with pytest.raises(recalign.FileError, match="another configuration"):
        recalign.VerifiedAlignment.from_bytes(b6[:at] + struct.pack("<Q", len(other)) + other + b6[at + 8 + len(fresh):])


def test_cli_parity_precision(tmp_path):
    """precision= is the CLI's --precision: "f64" (the default) and "f32-kernels" give the CLI's
    documents bit for bit (the single-precision sketch is another sketch: other bits); any other
    value is refused before a batch is read."""
    images, labels, x, y, data = synth_images(tmp_path, 300, 16)
    common = ["--images", images, "--raw-shape", "300,768", "--labels", labels, "--classes", 10, "--batch", 100,
              "--method", "nystrom", "--rank", 24, "--seed", 3]
    for precision in ("f64", "f32-kernels"):
        cli = cli_json("align", *common, "--precision", precision)
        same_document(cli, recalign.verified_align(data, 10, rank=24, seed=3, precision=precision), precision)
    assert cli != cli_json("align", *common)  # the last, f32-kernels, is not the default
    with pytest.raises(ValueError, match="precision must be"):
        recalign.verified_align(data, 10, rank=24, precision="f16")


def test_cli_parity_test_matrix(tmp_path):
    """test_matrix= is the CLI's --test-matrix: "sparse" gives the CLI's documents bit for bit
    (align, spectrum and, with a second pass, align again), differs from the default "signs", is
    saved and loaded with the state (states of the default keep their bytes) and refuses a merge
    with the other; refusals before a batch is read (FD, an unknown value, D too small)."""
    images, labels, x, y, data = synth_images(tmp_path, 300, 16)
    common = ["--images", images, "--raw-shape", "300,768", "--labels", labels, "--classes", 10, "--batch", 100,
              "--method", "nystrom", "--rank", 24, "--seed", 3]
    cli = cli_json("align", *common, "--test-matrix", "sparse")
    assert cli["sketch_error"]["test_matrix"] == "sparse"
    same_document(cli, recalign.verified_align(data, 10, rank=24, seed=3, test_matrix="sparse"), "align sparse")
    assert cli != cli_json("align", *common)
    cli = cli_json("align", *common, "--passes", 2, "--test-matrix", "sparse")
    same_document(cli, recalign.verified_align(data, 10, rank=24, passes=2, seed=3, test_matrix="sparse"),
                  "align sparse, 2 passes")
    rows = [(b[0],) for b in data]
    cli = cli_json("spectrum", *[a for a in common if a not in ("--labels", labels, "--classes", 10)],
                   "--test-matrix", "sparse")
    same_document(cli, recalign.verified_spectrum(rows, rank=24, seed=3, test_matrix="sparse"), "spectrum sparse")
    sparse = recalign.VerifiedAlignment(768, 10, rank=24, seed=3, test_matrix="sparse")
    signs = recalign.VerifiedAlignment(768, 10, rank=24, seed=3)
    for s in (sparse, signs):
        s.update(*data[0])
    assert b"test_matrix" in sparse.to_bytes() and b"test_matrix" not in signs.to_bytes()
    again = recalign.VerifiedAlignment.from_bytes(sparse.to_bytes())
    assert again.to_bytes() == sparse.to_bytes() and again._sketch.test == "sparse"
    with pytest.raises(ValueError, match="configuration"):
        sparse.merge(signs)
    with pytest.raises(ValueError, match="nystrom"):
        recalign.VerifiedAlignment(768, 10, rank=24, method="fd", test_matrix="sparse")
    with pytest.raises(ValueError, match="test_matrix must be"):
        recalign.verified_align(data, 10, rank=24, test_matrix="dense")
    with pytest.raises(ValueError, match="sparse sign test matrix"):
        recalign.VerifiedSpectrum(100, rank=24, test_matrix="sparse")

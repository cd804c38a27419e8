"""The one-call forms of the verified analyses (recalign.verified): build the state, read the
batches every pass it needs (recalign.track), return its report."""
import numpy as np

from ._verified_kinds import _TRADEOFF_REFINE, VerifiedAlignment, VerifiedDenoising, VerifiedSpectrum, \
    VerifiedTradeoff


def _run(name, state, batches, **track_options):
    """track(batches, state, **track_options).report(); an option track does not take is the
    caller's TypeError (a typo of one of its own keywords would otherwise be track()'s)."""
    import inspect
    from .hooks import track
    known = inspect.signature(track).parameters
    for key in track_options:
        if key not in known or key in ("batches", "tracker"):
            raise TypeError(f"{name}() got an unexpected keyword argument {key!r}")
    return track(batches, state, **track_options).report()


def verified_align(batches, classes, *, dim=None, method="nystrom", rank, passes=1, seed=0, center="uncentered",
                   measure="paper", tolerance=None, memory=None, precision="f64", test_matrix="signs",
                   **track_options):
    """`recalign align --method fd|nystrom --rank K --passes P [--tolerance T]` over `batches`
    (re-iterable (images, labels) batches, or a callable returning them): a
    VerifiedAlignmentResult. dim: D (default: read off the first batch). tolerance (Nyström):
    stop the sketch passes once the relative error estimate is at most T. memory: the budget in GiB
    (the CLI's --memory; None: this machine's physical memory): a run whose estimate exceeds it is
    refused (ValueError) before any row is read. precision: the CLI's --precision, "f64" (the
    default) or "f32-kernels" (the sketch's products in single precision; every number returned
    is still computed in double by the verification passes). test_matrix (Nyström): the CLI's
    --test-matrix, "signs" (the default) or "sparse" (8 signs a row of the first pass's Ω: that
    pass's X Ω by additions; D x 8 >= 32 x (rank + oversampling), else ValueError). Every refusal
    comes before the first batch is read,
    except that without dim the first batch's shape gives D (as the CLI reads the first image of an
    image folder). track_options go to recalign.track (checkpoint=..., every=..., resume=...)."""
    state = VerifiedAlignment(dim or _first_dim(batches), classes, method=method, rank=rank, passes=passes, seed=seed,
                              center=center, measure=measure, tolerance=tolerance, memory=memory,
                              precision=precision, test_matrix=test_matrix)
    return _run("verified_align", state, batches, **track_options)


def verified_spectrum(batches, *, dim=None, method="nystrom", rank, passes=1, seed=0, center="centered", tolerance=None,
                      memory=None, precision="f64", test_matrix="signs", **track_options):
    """`recalign spectrum --method fd|nystrom --rank K --passes P [--tolerance T]` over `batches`
    (re-iterable batches of rows, or (images, labels, ...) tuples whose labels are left out): a
    VerifiedSpectrumResult, whose projector(fraction, part) is `recalign project`'s on this route.
    center: "centered" by default, as the CLI's spectrum; the other options as verified_align."""
    state = VerifiedSpectrum(dim or _first_dim(batches), method=method, rank=rank, passes=passes, seed=seed,
                             center=center, tolerance=tolerance, memory=memory, precision=precision,
                             test_matrix=test_matrix)
    return _run("verified_spectrum", state, batches, **track_options)


def verified_denoise(batches, noises, classes, *, shape=None, layout="hwc", dim=None, method="nystrom", rank, passes=None,
                     seed=0, center="uncentered", measure="paper", refine=None, tolerance=None, memory=None,
                     precision="f64", test_matrix="signs", **track_options):
    """`recalign denoise --method fd|nystrom --rank K --passes P --refine N --noise ...` over
    `batches`: a VerifiedDenoisingResult (noises: specs, closed form or with draws=S, and
    recalign.Corruption objects; shape (H, W[, C]) for masks whose spec has none; refine: passes
    after the verification pass refining the masking noises' subspaces, default 8, 0 to skip
    (refused without a masking noise in closed form, as the CLI's --refine); passes: default
    None, the CLI's default (2 for Nyström when a masking noise is refined, else 1);
    memory, precision, test_matrix: as verified_align)."""
    if dim is None:
        dim = int(np.prod(shape)) if shape is not None else _first_dim(batches)
    state = VerifiedDenoising(dim, classes, noises, shape=shape, layout=layout, method=method, rank=rank, passes=passes,
                              seed=seed, center=center, measure=measure, refine=refine, tolerance=tolerance,
                              memory=memory, precision=precision, test_matrix=test_matrix)
    return _run("verified_denoise", state, batches, **track_options)


def verified_tradeoff(batches, lambdas, k, classes, *, dim=None, method="nystrom", rank, passes=1, seed=0,
                      center="uncentered", refine=_TRADEOFF_REFINE, tolerance=None, memory=None, precision="f64",
                      test_matrix="signs", **track_options):
    """`recalign tradeoff --method fd|nystrom --rank K --lambda ... --k K [--refine N]` over
    `batches`: a VerifiedTradeoffResult (losses of the encoders returned: upper bounds on the
    optimum; refine: the most CG passes after the first verification pass, default 20, stopping
    early as VerifiedTradeoff says; memory, precision, test_matrix: as verified_align)."""
    state = VerifiedTradeoff(dim or _first_dim(batches), classes, lambdas, k, method=method, rank=rank, passes=passes,
                             seed=seed, center=center, refine=refine, tolerance=tolerance, memory=memory,
                             precision=precision, test_matrix=test_matrix)
    return _run("verified_tradeoff", state, batches, **track_options)


def _first_dim(batches):
    from .hooks import _passes_iterable, _split
    images = _split(next(iter(_passes_iterable(batches, 2))), None)[0]
    shape = getattr(images, "shape", None) or np.asarray(images).shape
    return int(np.prod(shape[1:]))

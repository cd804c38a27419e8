"""The verified states' memory refusal: the CLI's estimate (recalign/align/verified_memory.hpp),
plus what this Python process holds already."""
import math

import numpy as np

from . import _recalign


def _gib(size):
    """The CLI's GiB format (validate.cpp: gib): 2 decimals under 10 GiB, none above."""
    return f"{size / 2**30:.{2 if size < 10 * 2**30 else 0}f} GiB"


def _require_memory(state, method, dim, classes, rank, passes, memory):
    """The CLI's refusals of a run that will not fit (validate.cpp: require_memory; the sketch routes'
    check_verification), with the library's estimate: the sketch, then the verification pass. memory:
    the budget in GiB (the CLI's --memory); None: this machine's physical memory; math.inf: no check."""
    if memory is not None:
        if isinstance(memory, bool) or not isinstance(memory, (int, float, np.integer, np.floating)) or \
                not memory > 0:
            raise ValueError(f"memory must be a number of GiB > 0 (the CLI's --memory), got {memory!r}")
        if math.isinf(memory):
            return
    budget = _recalign.physical_memory() if memory is None else float(memory) * 2**30
    analysis, options = state._verification()
    columns, extra = _recalign.verification_memory(analysis, dim, classes, rank, **options)
    blocks = passes if state._krylov and method == "nystrom" and passes > 1 else 1  # the sketch built in __init__
    held = _recalign.resident_memory()  # the estimate models a recalign process; this one holds Python too
    for what, need in ((type(state).__name__, _recalign.run_memory(method, dim, classes, rank, 0.0, blocks)),
                       ("the verification pass", _recalign.run_memory(method, dim, classes, rank, extra, blocks))):
        if budget > 0 and need + held > budget:
            has = f"memory={memory!r} is" if memory is not None else "this machine has"
            raise ValueError(f"{what}: method={method!r} needs about {_gib(need + held)} for D = {dim} and C = "
                             f"{classes} (rank {rank}, {columns} verified directions; {_gib(held)} of it held by this "
                             f"process already; {has} {_gib(budget)}): use a smaller rank" +
                             (" or fewer passes (block Krylov keeps every pass's block)" if blocks > 1 else ""))

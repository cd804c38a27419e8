#pragma once
// recalign._recalign.GramSolveCache: sketched_gram_solve's cache of the masks' preconditioner
// factors (recalign/align/sketch_denoising.hpp), which VerifiedDenoising's first basis records
// (sketched_denoising_subspace factors every patch block anyway) and hands to its first restart
// (DenoisingRefinement.close), as the CLI's denoise does. Not serialised: a loaded state's first
// restart forms the factors again, the same bits.
#include <memory>

#include "common.hpp"
#include "recalign/align/sketch_denoising.hpp"

namespace recalign::python {

using gram_cache_g = guarded<std::shared_ptr<gram_solve_cache>>;

}  // namespace recalign::python

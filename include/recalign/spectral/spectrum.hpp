// One spectrum type for every route (exact moments, Frequent Directions, Nyström), so that
// everything downstream (alignment up to the available rank, projections) is route-blind.
#pragma once

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>

#include "recalign/core/xt.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign {

struct spectrum {
    std::string method = "exact";  // "exact", "frequent_directions", "nystrom"
    centering center = centering::centered;
    std::uint64_t n = 0;
    std::size_t dim = 0;
    vector_t eigenvalues;  // descending, length k <= dim (k = dim for the exact route)
    matrix_t basis;        // dim x k, orthonormal columns
    double total = 0.0;    // trace of the second-moment matrix, tracked exactly by every route
    vector_t explained;    // cumulative eigenvalues / total
    // Route error information: FD's guaranteed bound ‖C − Ĉ‖₂ <= error_bound; Nyström's
    // a-posteriori estimate of ‖C − Ĉ‖. NaN where the route is exact.
    double error_bound = std::numeric_limits<double>::quiet_NaN();
    double error_estimate = std::numeric_limits<double>::quiet_NaN();
    int info = 0;  // LAPACK outcome of the decomposition (0 = converged)
    std::size_t rank() const noexcept { return eigenvalues.size(); }
};

// Full eigendecomposition of the accumulator's Sxx (centered or not).
spectrum exact_spectrum(const moment_accumulator& m, centering c);

}  // namespace recalign

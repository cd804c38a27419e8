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

// The route to the spectrum. One spelling everywhere (library, CLI --method, JSON, Python):
// "exact", "fd", "nystrom".
enum class route : std::uint8_t { exact = 1, frequent_directions = 2, nystrom = 3 };
const char* route_name(route r);
// Parses "exact", "fd" or "nystrom"; throws std::invalid_argument naming the bad value.
route parse_route(const std::string& s);

// Outcome of a decomposition (LAPACK's info > 0). A negative info is a bug and throws
// (core/blas.hpp); it never reaches a result.
enum class solver_status : std::uint8_t {
    converged = 0,
    not_converged = 1,  // an eigen- or singular-value solver did not converge
    breakdown = 2,      // a Cholesky factorisation met a non-positive pivot (e.g. Nyström's core)
};
const char* solver_status_name(solver_status s);
// From an eigen/SVD solver's LAPACK info (>= 0): 0 converged, > 0 not converged.
solver_status solver_status_of(int info) noexcept;
// The first status that is not `converged`, else `converged`: for results of several solves.
solver_status worst(solver_status a, solver_status b) noexcept;

struct spectrum {
    route method = route::exact;
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
    solver_status status = solver_status::converged;  // of the decomposition
    // A second moment is positive semi-definite: negative eigenvalues are rounding. finish()
    // (every route) sets them to 0 and records how many it clipped and the most negative
    // value it saw (0 when none), so a user can tell a rounding zero from a clipped one.
    std::size_t clipped = 0;
    double most_negative = 0.0;
    // A sketch's eigenvalues are its own estimates (which may be low), unless a verification
    // pass replaced them by the Ritz values of the returned basis (ritz_spectrum,
    // align/verification.hpp): each then the exact second moment along its direction.
    bool ritz = false;
    std::size_t rank() const noexcept { return eigenvalues.size(); }
    // True when every eigenvalue is exact for its basis direction: the exact route, or Ritz values.
    bool values_exact() const noexcept { return method == route::exact || ritz; }
    // True when every eigenpair of the D x D matrix is here (the exact route).
    bool complete() const noexcept { return eigenvalues.size() == dim; }
};

// Full eigendecomposition of the accumulator's Sxx (centered or not). Prefer finish()
// (spectral/statistics.hpp), which keeps Sxx and the cross statistics beside it.
spectrum exact_spectrum(const moment_accumulator& m, centering c);
// Its eigenvalues alone, consuming the accumulator (Sxx formed in its storage, then dsyevd
// without vectors): one D x D matrix at the peak, and no back transformation. The values are
// those of exact_spectrum to rounding (another order of operations); `basis` is empty (0 x 0).
spectrum exact_eigenvalues(moment_accumulator&& m, centering c);

// Sets the negative eigenvalues of s to 0, recording them in s.clipped and s.most_negative,
// and recomputes s.explained. The basis is unchanged (the eigenvectors are still exact).
void clip_negative_eigenvalues(spectrum& s);

}  // namespace recalign

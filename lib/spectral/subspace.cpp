#include "recalign/spectral/subspace.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

const char* subspace_part_name(subspace_part p) { return p == subspace_part::bottom ? "bottom" : "top"; }

subspace_part parse_subspace_part(const std::string& s) {
    if (s == "top") return subspace_part::top;
    if (s == "bottom") return subspace_part::bottom;
    throw std::invalid_argument("unknown subspace part '" + s + "' (expected top or bottom)");
}

subspace_projector subspace_projector::from_spectrum(const spectrum& s, const vector_t& mean,
                                                     const projector_options& options) {
    if (!(options.fraction >= 0.0 && options.fraction <= 1.0))
        throw std::invalid_argument("subspace_projector: variance fraction " + std::to_string(options.fraction) +
                                    " is not in [0, 1]");
    if (s.basis.shape(0) != s.dim || s.basis.shape(1) != s.rank())
        throw std::invalid_argument("subspace_projector: the spectrum's basis is not dim x rank");
    if (s.center == centering::centered && mean.size() != s.dim)
        throw std::invalid_argument("subspace_projector: a centered spectrum needs the data mean (" +
                                    std::to_string(s.dim) + " values), got " + std::to_string(mean.size()));
    if (s.center == centering::uncentered && mean.size() != 0)
        throw std::invalid_argument("subspace_projector: an uncentered spectrum projects without a mean; "
                                    "pass an empty mean");
    subspace_projector p;
    p.part = options.part;
    p.fraction = options.fraction;
    p.dim = s.dim;
    const std::size_t k = k_for_fraction(s.eigenvalues, s.total, options.fraction);
    double acc = 0.0;
    for (std::size_t i = 0; i < k; ++i) acc += std::max(s.eigenvalues(i), 0.0);
    p.explained = s.total > 0 ? acc / s.total : 0.0;
    // k_for_fraction returns the rank when the fraction is never reached: exact when the
    // spectrum is complete, a silent truncation for a sketch — refuse that, saying whether the
    // shortfall is measured (Ritz values: exact for these directions) or estimated.
    if (s.total > 0 && acc < options.fraction * s.total && s.rank() < s.dim) {
        const std::string directions =
            s.method == route::exact
                ? "the exact route's top " + std::to_string(s.rank()) + " eigenvectors explain "
                : std::string("the ") + route_name(s.method) + " sketch returned " + std::to_string(s.rank()) +
                      " directions, which explain ";
        std::string how_much = std::to_string(p.explained) + " of the variance";
        if (!s.values_exact())
            how_much = "an estimated " + how_much + " (by the sketch's own eigenvalues, which may be low)";
        else if (s.ritz)
            how_much += " (exact for them: their Ritz values from a verification pass)";
        throw std::invalid_argument("subspace_projector: " + directions + how_much + ", less than " +
                                    std::to_string(options.fraction) + "; use a larger sketch or the exact route");
    }
    p.k = k;
    p.basis = xt::view(s.basis, xt::all(), xt::range(0, k));
    p.mean = s.center == centering::centered ? mean : vector_t(xt::zeros<double>({s.dim}));
    return p;
}

subspace_projector subspace_projector::from_statistics(const statistics& s, const projector_options& options) {
    return from_spectrum(s.spec, s.center == centering::centered ? s.mean : vector_t(), options);
}

matrix_t subspace_projector::project(const batch_view& x) const {
    matrix_t out = matrix_t::from_shape({x.rows, dim});
    project(x, out.data());
    return out;
}

void subspace_projector::project(const batch_view& x, double* out) const {
    const std::size_t rows = x.rows;
    blas::to_blas_int(rows, "batch rows");
    to_double_checked(x, dim, out);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < dim; ++c) out[r * dim + c] -= mean(c);
    // Coefficients A = (X − μ) U_k (rows x k), then top = A U_kᵀ, bottom = (X − μ) − A U_kᵀ.
    if (k == 0) {
        // Empty top subspace: top keeps only the mean, bottom is the identity.
        if (part == subspace_part::top) std::fill(out, out + rows * dim, 0.0);
    } else {
        std::vector<double> a(rows * k);
        blas::gemm_nn(rows, k, dim, 1.0, out, basis.data(), 0.0, a.data());
        if (part == subspace_part::top)
            blas::gemm_nt(rows, dim, k, 1.0, a.data(), basis.data(), 0.0, out);
        else
            blas::gemm_nt(rows, dim, k, -1.0, a.data(), basis.data(), 1.0, out);
    }
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < dim; ++c) out[r * dim + c] += mean(c);
}

}  // namespace recalign

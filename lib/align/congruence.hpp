// Internal helper of the restricted statistics and the refinement's restarts. Not installed.
#pragma once

#include <cstddef>

#include "recalign/core/blas.hpp"
#include "recalign/core/xt.hpp"

namespace recalign::detail {

// Wᵀ A W (A: k x k symmetric, W: k x k2), exactly symmetric (the mean of the two triangles):
// a statistic of V carried to V W without reading the data (Vᵀ Sxx V, the Gram matrices, Vᵀ Bd V).
inline matrix_t congruence(const matrix_t& a, const matrix_t& w) {
    const std::size_t k = w.shape(0), k2 = w.shape(1);
    matrix_t aw = xt::zeros<double>({k, k2}), out = xt::zeros<double>({k2, k2});
    blas::gemm_nn(k, k2, k, 1.0, a.data(), w.data(), 0.0, aw.data());
    blas::gemm_tn(k2, k2, k, 1.0, w.data(), aw.data(), 0.0, out.data());
    for (std::size_t i = 0; i < k2; ++i)
        for (std::size_t j = i + 1; j < k2; ++j) out(i, j) = out(j, i) = 0.5 * (out(i, j) + out(j, i));
    return out;
}

}  // namespace recalign::detail

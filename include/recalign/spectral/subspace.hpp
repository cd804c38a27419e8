// Top and bottom principal subspaces (MATH.md §5; the paper's Figures 1, 4 and 9): the
// smallest k whose eigenvalues explain a fraction f of the variance, and the projection of
// rows onto span(U_k) ("top") or its orthogonal complement ("bottom"), which needs only U_k:
//
//     top:    U_k U_kᵀ (x − μ) + μ
//     bottom: (x − μ) − U_k U_kᵀ (x − μ) + μ
//
// One small value type, built once from any spectrum (exact or a sketch's), applied to
// every batch: used by the CLI's `project` command and the Python DataLoader transform.
#pragma once

#include <cstdint>
#include <vector>

#include "recalign/core/batch.hpp"
#include "recalign/core/xt.hpp"
#include "recalign/spectral/statistics.hpp"

namespace recalign {

enum class subspace_part : std::uint8_t { top = 1, bottom = 2 };
const char* subspace_part_name(subspace_part p);
// "top" or "bottom"; throws std::invalid_argument naming the bad value.
subspace_part parse_subspace_part(const std::string& s);

struct projector_options {
    double fraction = 0.75;  // f in [0, 1]: the top subspace explains at least f of the variance
    subspace_part part = subspace_part::top;
};

struct subspace_projector {
    subspace_part part = subspace_part::top;
    double fraction = 0.0;   // requested f
    double explained = 0.0;  // fraction the top k directions actually explain
    std::size_t k = 0;       // dimension of the top subspace
    std::size_t dim = 0;
    matrix_t basis;          // dim x k: U_k
    vector_t mean;           // dim: μ (zeros for an uncentered spectrum)

    // k = smallest with Σ_{i<=k} λ_i >= f · total. A sketch's spectrum holds only its top
    // directions: if they explain less than f, throws std::invalid_argument saying how much
    // they do, measured (spectrum::ritz: a verification pass's Ritz values, ritz_spectrum) or
    // estimated (the sketch's own eigenvalues). The bottom subspace is still exact: it needs
    // only U_k. With Ritz values k and `explained` are exact for the directions drawn. `mean` is the data
    // mean for a centered spectrum and must be empty for an uncentered one.
    static subspace_projector from_spectrum(const spectrum& s, const vector_t& mean, const projector_options& options);
    // The same from finished statistics (their spectrum, and their mean when centered).
    static subspace_projector from_statistics(const statistics& s, const projector_options& options);

    // Projects the rows of a batch (rows x dim; any dtype, checked finite) and returns them
    // as doubles, rows x dim.
    matrix_t project(const batch_view& x) const;
    // Same into a caller's buffer of rows * dim doubles (no allocation per batch but the
    // k-wide coefficients).
    void project(const batch_view& x, double* out) const;
};

}  // namespace recalign

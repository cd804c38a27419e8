// The Gram matrix of a Frequent Directions shrink (internal to lib/sketch; tests reach it by
// name): the buffer's head rows are the previous shrink's, mutually orthogonal.
#pragma once

#include <cstddef>

namespace recalign::fd_detail {

// The upper triangle of the row-major m x m Gram matrix R Rᵀ of the m rows of `rows`
// (m x d, row-major), of which the first p are the rows kept by the previous shrink:
// diag(c) Vᵀ B for orthonormal V, mutually orthogonal in exact arithmetic. Their p x p block
// is taken as diag(norms[0..p)) (their squared norms), so only the new rows' blocks are
// formed: a p x q GEMM and a q x q SYRK (q = m − p) instead of an m x m SYRK. For
// p = m / 2 this is 3/4 of the SYRK's flops.
void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const double* rows, const double* norms, double* gram);
void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const float* rows, const double* norms, float* gram);

// The first `kept` rows of `rows` (m x d, row-major) become T R (T: kept x m, row-major, kept <= m)
// in place, a block of `block` columns at a time through `scratch` (kept x block): each block of R
// is read whole before its first kept rows are written. No second kept x d array; each element is
// the same dot product over m as one GEMM of all d columns computes.
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const double* t, double* rows,
                          std::size_t block, double* scratch);
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const float* t, float* rows,
                          std::size_t block, float* scratch);

}  // namespace recalign::fd_detail

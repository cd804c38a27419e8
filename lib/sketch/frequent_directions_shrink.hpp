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
// The same in single precision from double rows, converted `block` columns at a time into
// `scratch` (m x block floats) and summed block by block: no float copy of the whole buffer.
// For d <= block, the very call the float overload makes on the rows converted. Leaves the last
// block (columns from block·⌊(d − 1) / block⌋ on) converted in `scratch`.
void gram_of_rows(std::size_t m, std::size_t p, std::size_t d, const double* rows, const double* norms, float* gram,
                  std::size_t block, float* scratch);

// The first `kept` rows of `rows` (m x d, row-major) become T R (T: kept x m, row-major, kept <= m)
// in place, a block of `block` columns at a time through `scratch` (kept x block): each block of R
// is read whole before its first kept rows are written. No second kept x d array; each element is
// the same dot product over m as one GEMM of all d columns computes.
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const double* t, double* rows,
                          std::size_t block, double* scratch);
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const float* t, float* rows,
                          std::size_t block, float* scratch);
// The same in single precision on double rows: each block of R converted into `in` (m x block
// floats), multiplied into `out` (kept x block) and written back as doubles, the last block
// first: with `last_converted`, `in` already holds it (as gram_of_rows leaves it), so for
// d <= block the rows are converted once per shrink. Each element is the float overload's on
// the converted rows.
void rotate_rows_in_place(std::size_t kept, std::size_t m, std::size_t d, const float* t, double* rows,
                          std::size_t block, float* in, float* out, bool last_converted);

}  // namespace recalign::fd_detail

// The thin SVD of a tall matrix without a D x s LAPACK SVD (Cholesky QR twice, then an s x s
// SVD): shared by the Nyström reconstruction and Frequent Directions' finish. Not installed.
#pragma once

#include "recalign/core/xt.hpp"

namespace recalign::detail {

// Thin SVD of a tall E (D x s, overwritten) without a D x s SVD: Cholesky QR twice (E = Q C,
// C = C₂C₁ from the Cholesky factors of EᵀE and of (E C₁⁻¹)ᵀ(E C₁⁻¹): the second pass makes Q
// orthonormal to rounding), then the s x s SVD C = U_C Σ Vᵀ, U = Q U_C. It needs κ(E)² ε < 1,
// which the Nyström shift provides (κ(E)² is about 1 / (√D ε) at worst) and FD's finish its
// cut at rel_tol λ₁ (κ(E)² = λ₁ / λ_r); `sv` holds s values on entry. If a Cholesky
// factorisation fails anyway, false, E is left as it was (to rounding) and the caller takes
// LAPACK's SVD of it. On success U is formed in E's storage and moved into `u` (e is left empty).
bool svd_cholqr2(matrix_t& e, matrix_t& u, vector_t& sv);

}  // namespace recalign::detail

// Cholesky QR twice and a small SVD: the tall thin SVD of tall_svd.hpp.
#include "tall_svd.hpp"

#include "../align/nested.hpp"  // multiply_rows_in_place
#include "recalign/core/blas.hpp"

namespace recalign::detail {

bool svd_cholqr2(matrix_t& e, matrix_t& u, vector_t& sv) {
    const std::size_t d = e.shape(0), s = e.shape(1);
    matrix_t c1 = xt::zeros<double>({s, s}), c2 = xt::zeros<double>({s, s});
    blas::syrk_tn(s, d, 1.0, e.data(), 0.0, c1.data());
    if (blas::potrf_upper(s, c1.data()) != 0) return false;
    for (std::size_t i = 0; i < s; ++i)
        for (std::size_t j = 0; j < i; ++j) c1(i, j) = 0.0;  // the factors are upper triangular
    matrix_t& q = e;  // in place
    blas::trsm_right_upper(d, s, c1.data(), q.data());
    blas::syrk_tn(s, d, 1.0, q.data(), 0.0, c2.data());
    if (blas::potrf_upper(s, c2.data()) != 0) {
        matrix_t back = xt::zeros<double>({d, s});  // E = Q₁ C₁ again, for the caller's SVD
        blas::gemm_nn(d, s, s, 1.0, q.data(), c1.data(), 0.0, back.data());
        e = std::move(back);
        return false;
    }
    blas::trsm_right_upper(d, s, c2.data(), q.data());
    for (std::size_t i = 0; i < s; ++i)
        for (std::size_t j = 0; j < i; ++j) c2(i, j) = 0.0;
    matrix_t c = xt::zeros<double>({s, s}), uc = xt::zeros<double>({s, s}), vt = xt::zeros<double>({s, s});
    blas::gemm_nn(s, s, s, 1.0, c2.data(), c1.data(), 0.0, c.data());
    if (blas::gesdd_thin(s, s, c.data(), sv.data(), uc.data(), vt.data()) != 0) return false;
    // U = Q U_C in Q's own storage (no second D x s array at the finish's peak).
    multiply_rows_in_place(q, uc);
    u = std::move(q);
    e = matrix_t();
    return true;
}

}  // namespace recalign::detail

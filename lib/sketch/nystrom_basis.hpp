// Internal helpers shared by the Nyström sketch's two halves: the streaming accumulator
// (nystrom_sketch.cpp: update, merge, passes, Krylov blocks) and its finishing linear algebra
// (nystrom_spectrum.cpp: the stable reconstruction, the spectrum and its error estimate).
// Not installed.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <vector>

#include "recalign/core/xt.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/spectral/spectrum.hpp"

namespace recalign::detail {

// Stream ids of the random test matrices (row i of each is stream (seed, id, i)): Gaussian
// (states saved before signs existed), signs, and the sparse sign Ω (whose probes are the signs').
constexpr std::uint64_t omega_stream = 0, probe_stream = 1, sign_omega_stream = 2, sign_probe_stream = 3;
constexpr std::uint64_t sparse_omega_stream = 4;

// Rows of the test matrix regenerated at a time while finishing: a cache-sized block, as the
// update's column blocks (which are tuned for their GEMMs on their own).
constexpr std::size_t regenerated_rows = 1024;

// Columns [first, first + count) of a row-major matrix, as their own matrix.
inline matrix_t columns(const matrix_t& a, std::size_t first, std::size_t count) {
    const std::size_t rows = a.shape(0), cols = a.shape(1);
    matrix_t out = xt::zeros<double>({rows, count});
    for (std::size_t i = 0; i < rows; ++i)
        std::memcpy(out.data() + i * count, a.data() + i * cols + first, count * sizeof(double));
    return out;
}

// Columns [first, first + count) of rows [c0, c0 + cb) of the sketch's test matrix, as a
// contiguous cb x count block (regenerated; `scratch` holds cb x (s + probes)).
inline void test_columns(const nystrom_sketch& sk, std::size_t c0, std::size_t cb, std::size_t first, std::size_t count,
                         std::vector<double>& scratch, double* out) {
    const std::size_t w = sk.width() + sk.options().probes;
    sk.test_block(c0, cb, scratch.data());
    for (std::size_t i = 0; i < cb; ++i) std::memcpy(out + i * count, scratch.data() + i * w + first, count * sizeof(double));
}

// The Nyström test matrix of the current pass's result: [K | T_s] (D x W, W = m s + s: the
// kept Krylov blocks, then the first s columns of the current test matrix), rows [c0, c0 + cb)
// as a contiguous cb x W block; and its product [C K | Y_s] from y (D x (s + probes)).
inline std::size_t basis_width(const nystrom_sketch& sk) { return sk.krylov_basis().shape(1) + sk.width(); }

inline void basis_rows(const nystrom_sketch& sk, std::size_t c0, std::size_t cb, std::vector<double>& scratch, double* out) {
    const matrix_t& kq = sk.krylov_basis();
    const std::size_t ms = kq.shape(1), s = sk.width(), w = ms + s;
    if (ms == 0) return test_columns(sk, c0, cb, 0, s, scratch, out);
    test_columns(sk, c0, cb, 0, s, scratch, out + ms);  // rows of stride s, shifted below
    for (std::size_t i = cb; i-- > 0;) {
        std::memmove(out + i * w + ms, out + ms + i * s, s * sizeof(double));
        std::memcpy(out + i * w, kq.data() + (c0 + i) * ms, ms * sizeof(double));
    }
}

struct reconstruction {
    matrix_t u;       // D x s, orthonormal columns, descending λ
    vector_t lambda;  // s, >= 0
    double nu = 0.0;
    int info = 0;  // first failing LAPACK info (0 = fine)
    solver_status status = solver_status::converged;  // what that info means
};

// The stable Nyström reconstruction of the current pass from y (D x (s + probes)): its
// eigenvectors and eigenvalues over the whole basis [K | T_s] (nystrom_spectrum.cpp).
// `uncentering` (nystrom_sketch::uncentering, non-empty): y is the centered range and n μ
// (uncentering)ᵀ is added to the columns taken from it.
reconstruction reconstruct(const nystrom_sketch& sk, const matrix_t& y, const std::vector<double>& uncentering = {});

}  // namespace recalign::detail

// Helpers of the sketch tests: synthetic data with a known population spectrum, the exact
// reference (moment accumulator + full eigendecomposition), and the error measures the
// sketches are judged by (captured variance, principal angles, spectral / Frobenius error).
#pragma once

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <exception>
#include <functional>
#include <sstream>
#include <string>
#include <vector>

#include <lapacke.h>

#include <stdexcept>

#include <recalign/core/blas.hpp>
#include <recalign/core/rng.hpp>
#include <recalign/core/xt.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>
#include <recalign/spectral/eigen.hpp>
#include <recalign/spectral/spectrum.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"

namespace sketch_testing {

using recalign::matrix_t;
using recalign::vector_t;

enum class decay { power_law, exponential };

// Population variances: power law λ_j = j^-1 or exponential λ_j = exp(-j / 25) + 1e-4.
inline std::vector<double> population(decay kind, std::size_t d) {
    std::vector<double> lam(d);
    for (std::size_t j = 0; j < d; ++j)
        lam[j] = kind == decay::power_law ? 1.0 / static_cast<double>(j + 1)
                                          : std::exp(-static_cast<double>(j) / 25.0) + 1e-4;
    return lam;
}

// n x d rows: independent N(0, λ_j) coordinates, rotated by four Householder reflections (so
// the eigenbasis is not the coordinate basis), plus a mean offset (so centering matters).
inline std::vector<double> synthetic(decay kind, std::size_t n, std::size_t d, std::uint64_t seed) {
    const std::vector<double> lam = population(kind, d);
    std::vector<double> x(n * d);
    for (std::size_t r = 0; r < n; ++r) {
        const recalign::rng::stream s(seed, 7, r);
        for (std::size_t c = 0; c < d; ++c) x[r * d + c] = std::sqrt(lam[c]) * s.normal(c);
    }
    for (std::uint64_t h = 0; h < 4; ++h) {
        std::vector<double> v(d);
        const recalign::rng::stream s(seed, 8, h);
        double nv = 0.0;
        for (std::size_t c = 0; c < d; ++c) {
            v[c] = s.normal(c);
            nv += v[c] * v[c];
        }
        for (double& e : v) e /= std::sqrt(nv);
        for (std::size_t r = 0; r < n; ++r) {
            double* row = x.data() + r * d;
            double dot = 0.0;
            for (std::size_t c = 0; c < d; ++c) dot += row[c] * v[c];
            for (std::size_t c = 0; c < d; ++c) row[c] -= 2.0 * dot * v[c];
        }
    }
    for (std::size_t r = 0; r < n; ++r)
        for (std::size_t c = 0; c < d; ++c) x[r * d + c] += 0.5 + 0.001 * static_cast<double>(c);
    return x;
}

// Feeds rows [first, last) in batches of `batch` to update(batch_view, first_row).
template <class Acc>
void feed(Acc& acc, const std::vector<double>& x, std::size_t d, std::size_t first, std::size_t last,
          std::size_t batch) {
    for (std::size_t r = first; r < last; r += batch) {
        const std::size_t rows = std::min(batch, last - r);
        acc.update(recalign::batch_view(x.data() + r * d, rows, d), r);
    }
}

// The exact reference: C (centered or not) and its full eigendecomposition.
struct exact_reference {
    matrix_t c;
    recalign::spectrum spec;
    double frobenius2 = 0.0;  // ‖C‖_F²
    double top_sum(std::size_t k) const {
        double t = 0.0;
        for (std::size_t i = 0; i < k; ++i) t += spec.eigenvalues(i);
        return t;
    }
    double tail_sum(std::size_t k) const {
        double t = 0.0;
        for (std::size_t i = k; i < spec.rank(); ++i) t += std::max(spec.eigenvalues(i), 0.0);
        return t;
    }
};

// Eigenvalues (descending) of a symmetric matrix (values only: a third of the full cost).
inline vector_t eigenvalues(const matrix_t& a) {
    const std::size_t n = a.shape(0);
    matrix_t w = a;
    std::vector<double> ev(n);
    const int info = LAPACKE_dsyevd(LAPACK_ROW_MAJOR, 'N', 'U', static_cast<int>(n), w.data(), static_cast<int>(n), ev.data());
    if (info != 0) throw std::runtime_error("dsyevd failed in a test helper");
    vector_t out = xt::zeros<double>({n});
    for (std::size_t i = 0; i < n; ++i) out(i) = ev[n - 1 - i];
    return out;
}

// `with_basis = false` skips the eigenvectors (spec.basis stays empty) where only the
// eigenvalues are needed, to keep the tests fast.
inline exact_reference exact(const std::vector<double>& x, std::size_t n, std::size_t d, recalign::centering c,
                             bool with_basis = true) {
    recalign::moment_options o;
    o.dim = d;
    recalign::moment_accumulator m(o);
    feed(m, x, d, 0, n, 1000);
    exact_reference r;
    r.c = m.sxx(c);
    if (with_basis) {
        r.spec = recalign::exact_spectrum(m, c);
    } else {
        r.spec.center = c;
        r.spec.n = m.n();
        r.spec.dim = d;
        r.spec.eigenvalues = eigenvalues(r.c);
        r.spec.total = m.trace_xx(c);
    }
    for (double v : r.c) r.frobenius2 += v * v;
    return r;
}

// tr(Vᵀ C V) for the first k columns of V (d x >=k).
inline double captured(const matrix_t& c, const matrix_t& v, std::size_t k) {
    const std::size_t d = c.shape(0), w = v.shape(1);
    matrix_t cv = xt::zeros<double>({d, w});
    recalign::blas::gemm_nn(d, w, d, 1.0, c.data(), v.data(), 0.0, cv.data());
    double t = 0.0;
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j) t += v(i, j) * cv(i, j);
    return t;
}

// Relative captured-variance error of the first k columns of V against the exact top k.
inline double captured_error(const exact_reference& ref, const matrix_t& v, std::size_t k) {
    return (ref.top_sum(k) - captured(ref.c, v, k)) / ref.top_sum(k);
}

// sin² of the largest principal angle between span(U[:, :k]) and span(V[:, :k]).
inline double sin2_max_angle(const matrix_t& u, const matrix_t& v, std::size_t k) {
    const std::size_t d = u.shape(0);
    matrix_t uk = xt::zeros<double>({d, k}), vk = xt::zeros<double>({d, k});
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < k; ++j) {
            uk(i, j) = u(i, j);
            vk(i, j) = v(i, j);
        }
    matrix_t m = xt::zeros<double>({k, k});
    recalign::blas::gemm_tn(k, k, d, 1.0, uk.data(), vk.data(), 0.0, m.data());
    matrix_t mmt = xt::zeros<double>({k, k});
    recalign::blas::gemm_nt(k, k, k, 1.0, m.data(), m.data(), 0.0, mmt.data());
    const recalign::eigen_result e = recalign::sym_eigen(mmt);
    return std::max(0.0, 1.0 - e.values(k - 1));  // smallest cos²
}

// Σ sin² of the principal angles between span(U[:, :k]) and span(V[:, :k]) (orthonormal
// columns): k − ‖U_kᵀ V_k‖_F², the squared chordal subspace distance.
inline double sin2_sum(const matrix_t& u, const matrix_t& v, std::size_t k) {
    const std::size_t d = u.shape(0);
    double f = 0.0;
    for (std::size_t a = 0; a < k; ++a)
        for (std::size_t b = 0; b < k; ++b) {
            double dot = 0.0;
            for (std::size_t i = 0; i < d; ++i) dot += u(i, a) * v(i, b);
            f += dot * dot;
        }
    return static_cast<double>(k) - f;
}

// max |VᵀV − I|.
inline double orthonormality_defect(const matrix_t& v) {
    const std::size_t d = v.shape(0), k = v.shape(1);
    matrix_t g = xt::zeros<double>({k, k});
    recalign::blas::gemm_tn(k, k, d, 1.0, v.data(), v.data(), 0.0, g.data());
    double worst = 0.0;
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) worst = std::max(worst, std::abs(g(i, j) - (i == j ? 1.0 : 0.0)));
    return worst;
}

// ‖C − U diag(λ) Uᵀ‖_F for orthonormal U (d x k), without forming the difference.
inline double frobenius_error(const exact_reference& ref, const matrix_t& u, const vector_t& lam) {
    const std::size_t d = u.shape(0), k = u.shape(1);
    matrix_t cu = xt::zeros<double>({d, k});
    recalign::blas::gemm_nn(d, k, d, 1.0, ref.c.data(), u.data(), 0.0, cu.data());
    double cross = 0.0, own = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        double q = 0.0;
        for (std::size_t i = 0; i < d; ++i) q += u(i, j) * cu(i, j);
        cross += lam(j) * q;
        own += lam(j) * lam(j);
    }
    return std::sqrt(std::max(ref.frobenius2 - 2.0 * cross + own, 0.0));
}

// The Nyström tests' options: D, rank k, oversampling p, seed and probes; each test sets the
// rest (centering, test matrix, Krylov blocks) on the result.
inline recalign::nystrom_options nystrom_opts(std::size_t d, std::size_t k, std::size_t p, std::uint64_t seed,
                                              std::size_t probes) {
    recalign::nystrom_options o;
    o.dim = d;
    o.rank = k;
    o.oversampling = p;
    o.seed = seed;
    o.probes = probes;
    return o;
}

// Max relative difference of two matrices (to max |b|).
inline double rel_diff(const matrix_t& a, const matrix_t& b) {
    double num = 0.0, den = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(a.data()[i] - b.data()[i]));
        den = std::max(den, std::abs(b.data()[i]));
    }
    return num / den;
}

// The checkpoint round trip of every accumulator's tests (tests/common/helpers.hpp).
using testing::loaded;
using testing::saved;

// The first truncation or one-bit flip (bit `mask` of a byte) of a saved state that loads
// without throwing, described ("" when every one throws), and whether the whole state loads
// back to its own bytes.
template <class Acc>
std::string first_accepted_damage(const std::string& bytes, char mask = 0x01) {
    const auto accepted = [](const std::string& b) {
        try {
            loaded<Acc>(b);
            return true;
        } catch (const std::exception&) {
            return false;
        }
    };
    for (std::size_t len = 0; len < bytes.size(); ++len)
        if (accepted(bytes.substr(0, len))) return "truncated to " + std::to_string(len) + " of " + std::to_string(bytes.size()) + " bytes";
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string flipped = bytes;
        flipped[i] = static_cast<char>(flipped[i] ^ mask);
        if (accepted(flipped)) return "byte " + std::to_string(i) + " flipped";
    }
    return saved(loaded<Acc>(bytes)) == bytes ? "" : "the whole state does not load back to its bytes";
}

}  // namespace sketch_testing

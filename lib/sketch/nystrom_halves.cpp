// The Nyström update's two sweeps split by column blocks between two threads, each running its
// own GEMMs on one OpenBLAS thread (docs/benchmarks-log.md, the thirty-seventh session): at
// D = 150,528 two single-threaded updates side by side did 1.3x the rows per second of the bare
// GEMMs on two OpenBLAS threads, and 2.1x (float32) / 1.8x (float64) the update that split only
// the element-wise work between the GEMMs (first_sweep, second_sweep). The first sweep's sums
// over blocks (X T, cᵀ T, Σ X_s²) are formed per half and then added, half 0's plus half 1's,
// whether or not the second thread runs, and OpenBLAS is on one thread either way: the bits do
// not depend on the thread count. The second sweep writes disjoint blocks of Y.
#include <algorithm>
#include <cstddef>
#include <type_traits>
#include <vector>

#include "centered_block.hpp"
#include "second_thread.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"

namespace recalign {

using detail::centered_block;
using detail::column_block;

namespace {

template <class T, class H>
std::vector<T>& batch_block(H& h) {
    if constexpr (std::is_same_v<T, float>) return h.xf;
    else return h.xb;
}

template <class T, class H>
std::vector<T>& product(H& h) {
    if constexpr (std::is_same_v<T, float>) return h.zf;
    else return h.zb;
}

}  // namespace

template <class T>
double nystrom_sketch::first_sweep_halves(const batch_view& x, const double* shift, double* sums, double* sums_t,
                                          detail::second_thread& two) {
    constexpr bool single = std::is_same_v<T, float>;
    const std::size_t d = options_.dim, rows = x.rows, w = y_.shape(1), cbmax = std::min(d, column_block);
    for (half_scratch& h : halves_) {
        batch_block<T>(h).resize(rows * cbmax);
        product<T>(h).assign(rows * w, T(0));
        h.tb.resize(cbmax * w);
        if constexpr (single) h.tf.resize(cbmax * w);
        h.ssc.resize(cbmax);
        h.st.assign(w, 0.0);
        h.ss = 0.0;
    }
    auto half = [&](int part) {
        half_scratch& h = halves_[part];
        std::vector<T>& xs = batch_block<T>(h);
        std::vector<T>& zs = product<T>(h);
        const auto [b0, b1] = detail::block_half(d, column_block, part);
        for (std::size_t b = b0; b < b1; ++b) {
            const std::size_t c0 = b * column_block, cb = std::min(column_block, d - c0);
            std::fill(h.ssc.begin(), h.ssc.begin() + static_cast<std::ptrdiff_t>(cb), 0.0);
            centered_block(x, shift, c0, cb, 0, cb, xs.data(), sums + c0, h.ssc.data());
            test_block(c0, cb, h.tb.data());
            for (std::size_t c = 0; c < cb; ++c) h.ss += h.ssc[c];
            blas::gemm_tn(1, w, cb, 1.0, sums + c0, h.tb.data(), 1.0, h.st.data());  // cᵀ T
            if constexpr (single) {
                for (std::size_t i = 0; i < cb * w; ++i) h.tf[i] = static_cast<float>(h.tb[i]);
                blas::gemm_nn(rows, w, cb, 1.0f, xs.data(), h.tf.data(), 1.0f, zs.data());
            } else {
                blas::gemm_nn(rows, w, cb, 1.0, xs.data(), h.tb.data(), 1.0, zs.data());  // Z += X_s[:, block] T[block]
            }
        }
    };
    {
        const detail::one_blas_thread one;
        two.run(half);
    }
    std::vector<T>& z = product<T>(halves_[0]);
    const std::vector<T>& z1 = product<T>(halves_[1]);
    for (std::size_t i = 0; i < rows * w; ++i) z[i] += z1[i];
    for (std::size_t j = 0; j < w; ++j) sums_t[j] += halves_[0].st[j] + halves_[1].st[j];
    return halves_[0].ss + halves_[1].ss;
}

template <class T>
void nystrom_sketch::second_sweep_halves(const batch_view& x, const double* shift, double coef, const double* e,
                                         const double* et, detail::second_thread& two) {
    constexpr bool single = std::is_same_v<T, float>;
    const std::size_t d = options_.dim, rows = x.rows, w = y_.shape(1), cbmax = std::min(d, column_block);
    if constexpr (single)
        for (half_scratch& h : halves_) h.yf.resize(cbmax * w);
    const T* z = product<T>(halves_[0]).data();  // X T, both halves' (first_sweep_halves)
    auto half = [&](int part) {
        half_scratch& h = halves_[part];
        std::vector<T>& xs = batch_block<T>(h);
        const auto [b0, b1] = detail::block_half(d, column_block, part);
        for (std::size_t b = b0; b < b1; ++b) {
            const std::size_t c0 = b * column_block, cb = std::min(column_block, d - c0);
            centered_block(x, shift, c0, cb, 0, cb, xs.data(), static_cast<double*>(nullptr), static_cast<double*>(nullptr));
            double* yblock = y_.data() + c0 * w;
            if constexpr (single) {
                blas::gemm_tn(cb, w, rows, 1.0f, xs.data(), z, 0.0f, h.yf.data());
                for (std::size_t i = 0; i < cb; ++i) {
                    const double ce = coef * e[c0 + i];
                    double* yr = yblock + i * w;
                    const float* fr = h.yf.data() + i * w;
                    for (std::size_t j = 0; j < w; ++j) yr[j] += static_cast<double>(fr[j]) + ce * et[j];
                }
            } else {
                blas::gemm_tn(cb, w, rows, 1.0, xs.data(), z, 1.0, yblock);
                blas::ger(cb, w, coef, e + c0, et, yblock);  // while the block is in cache
            }
        }
    };
    const detail::one_blas_thread one;
    two.run(half);
}

template double nystrom_sketch::first_sweep_halves<double>(const batch_view&, const double*, double*, double*,
                                                           detail::second_thread&);
template double nystrom_sketch::first_sweep_halves<float>(const batch_view&, const double*, double*, double*,
                                                          detail::second_thread&);
template void nystrom_sketch::second_sweep_halves<double>(const batch_view&, const double*, double, const double*,
                                                          const double*, detail::second_thread&);
template void nystrom_sketch::second_sweep_halves<float>(const batch_view&, const double*, double, const double*,
                                                         const double*, detail::second_thread&);

}  // namespace recalign

// Pass 0 of the Nyström update with the sparse sign test matrix (nystrom_test::sparse_signs):
// Z = X_s Ω as ζ signed additions a value of the batch instead of a GEMM of s columns. The
// second sweep (Y += X_sᵀ Z) is the dense one of nystrom_sketch.cpp.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <type_traits>
#include <vector>

#include "centered_block.hpp"
#include "nystrom_basis.hpp"
#include "second_thread.hpp"
#include "recalign/core/rng.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"

namespace recalign {

using detail::centered_block;
using detail::column_block;
using detail::half_of;
using detail::sparse_omega_stream;

#pragma GCC diagnostic ignored "-Wpsabi"  // 64-byte vectors passed in registers: internal, inlined

namespace {

// The layout of the sparse sweep's scratch: the batch's rows in chunks of chunk_rows<T> (four
// 64-byte vectors), and within a chunk a matrix's rows (the block's columns for X_sᵀ, Z's
// columns for Zᵀ) each chunk_rows<T> long and contiguous: element (i, r) of an m-row matrix at
// (r / R) m R + i R + r % R. A chunk's part of X_sᵀ (a block's 1024 rows of 256 bytes) is then
// one contiguous quarter-megabyte, read in order; the last chunk's tail is padding, computed on
// and never read back.
template <class T>
constexpr std::size_t chunk_rows = 256 / sizeof(T);

// 64 bytes of T (GCC's vector extension: one 512-bit register in the AVX-512 clone, two or four
// narrower ones elsewhere, the same additions either way).
template <class T>
struct vec64 {
    typedef T type __attribute__((vector_size(64)));
};

template <class T>
[[gnu::always_inline]] inline typename vec64<T>::type load64(const T* p) {
    typename vec64<T>::type v;
    std::memcpy(&v, p, 64);
    return v;
}

// Chunks [q0, q1) of Zᵀ (w rows) += Tᵀ[:, block] X_sᵀ[block, :], T's block given by column:
// column c's nonzeros are ent[ptr[c] .. ptr[c + 1]), each ±(row in the block + 1) for an entry
// ±1; xt is the block's X_sᵀ (cb rows), both in the chunked layout. A chunk's sums of a column
// stay in registers while the column's entries are added (a load a vector, no store); each
// element's additions run in the order of its column's entries whatever the vector width, so
// the clones below give the same bits; chosen at run time.
// The dense probe columns [c0, c0 + G) of one chunk, G at a time: each row of X_sᵀ loaded once
// for all G (4 G sums in registers), the rows in the order of the columns' entries (every row
// of the block, in order), so each element gets the same additions in the same order as one
// column at a time would give it.
template <class T, std::size_t G>
[[gnu::always_inline]] inline void add_dense_columns(const std::size_t* ptr, const std::int32_t* ent, std::size_t c0,
                                                     const T* xq, std::size_t cb, T* zq) {
    using V = typename vec64<T>::type;
    constexpr std::size_t L = 64 / sizeof(T), R = chunk_rows<T>;
    V a[G][4];
    const std::int32_t* col[G];
#pragma GCC unroll 8
    for (std::size_t g = 0; g < G; ++g) {
        col[g] = ent + ptr[c0 + g];
#pragma GCC unroll 4
        for (std::size_t v = 0; v < 4; ++v) a[g][v] = load64(zq + (c0 + g) * R + v * L);
    }
    for (std::size_t j = 0; j < cb; ++j) {
        const T* xr = xq + j * R;
        const V x0 = load64(xr), x1 = load64(xr + L), x2 = load64(xr + 2 * L), x3 = load64(xr + 3 * L);
#pragma GCC unroll 8
        for (std::size_t g = 0; g < G; ++g) {
            const T sign = col[g][j] > 0 ? T(1) : T(-1);
            a[g][0] += sign * x0;
            a[g][1] += sign * x1;
            a[g][2] += sign * x2;
            a[g][3] += sign * x3;
        }
    }
#pragma GCC unroll 8
    for (std::size_t g = 0; g < G; ++g)
#pragma GCC unroll 4
        for (std::size_t v = 0; v < 4; ++v) std::memcpy(zq + (c0 + g) * R + v * L, &a[g][v], 64);
}

// Chunks [q0, q1) of Zᵀ (w rows) += Tᵀ[:, block] X_sᵀ[block, :], T's block given by column:
// column c's nonzeros are ent[ptr[c] .. ptr[c + 1]), each ±(row in the block + 1) for an entry
// ±1; xt is the block's X_sᵀ (cb rows), both in the chunked layout; columns [dense, w) hold an
// entry in every row (the probes). A chunk's sums of a column stay in registers while the
// column's entries are added (a load a vector, no store); the dense columns share their loads
// (add_dense_columns). Each element's additions run in the order of its column's entries
// whatever the vector width, so the clones below give the same bits; chosen at run time.
template <class T>
[[gnu::always_inline]] inline void add_chunks(const std::size_t* ptr, const std::int32_t* ent, std::size_t w,
                                              std::size_t dense, const T* xt, std::size_t cb, std::size_t q0,
                                              std::size_t q1, T* zt) {
    using V = typename vec64<T>::type;
    constexpr std::size_t L = 64 / sizeof(T), R = chunk_rows<T>;
    for (std::size_t q = q0; q < q1; ++q) {
        const T* xq = xt + q * cb * R;
        T* zq = zt + q * w * R;
        for (std::size_t c = 0; c < dense; ++c) {
            T* zc = zq + c * R;
            V a0 = load64(zc), a1 = load64(zc + L), a2 = load64(zc + 2 * L), a3 = load64(zc + 3 * L);
            for (std::size_t e = ptr[c]; e < ptr[c + 1]; ++e) {
                const std::int32_t p = ent[e];
                const T sign = p > 0 ? T(1) : T(-1);  // ±1 x is exact: a − x to the bit
                const T* xr = xq + static_cast<std::size_t>(std::abs(p) - 1) * R;
                a0 += sign * load64(xr);
                a1 += sign * load64(xr + L);
                a2 += sign * load64(xr + 2 * L);
                a3 += sign * load64(xr + 3 * L);
            }
            std::memcpy(zc, &a0, 64);
            std::memcpy(zc + L, &a1, 64);
            std::memcpy(zc + 2 * L, &a2, 64);
            std::memcpy(zc + 3 * L, &a3, 64);
        }
        std::size_t c = dense;
        for (; c + 5 <= w; c += 5) add_dense_columns<T, 5>(ptr, ent, c, xq, cb, zq);
        switch (w - c) {
            case 4: add_dense_columns<T, 4>(ptr, ent, c, xq, cb, zq); break;
            case 3: add_dense_columns<T, 3>(ptr, ent, c, xq, cb, zq); break;
            case 2: add_dense_columns<T, 2>(ptr, ent, c, xq, cb, zq); break;
            case 1: add_dense_columns<T, 1>(ptr, ent, c, xq, cb, zq); break;
            default: break;
        }
    }
}

#if defined(__GNUC__) && defined(__x86_64__)
#define RECALIGN_SPARSE_CLONES 1
template <class T>
[[gnu::target("avx512f")]] void add_chunks_avx512(const std::size_t* ptr, const std::int32_t* ent, std::size_t w,
                                                  std::size_t dense, const T* xt, std::size_t cb, std::size_t q0,
                                                  std::size_t q1, T* zt) {
    add_chunks(ptr, ent, w, dense, xt, cb, q0, q1, zt);
}
template <class T>
[[gnu::target("avx2")]] void add_chunks_avx2(const std::size_t* ptr, const std::int32_t* ent, std::size_t w,
                                             std::size_t dense, const T* xt, std::size_t cb, std::size_t q0,
                                             std::size_t q1, T* zt) {
    add_chunks(ptr, ent, w, dense, xt, cb, q0, q1, zt);
}
#endif

template <class T>
void add_block(const std::size_t* ptr, const std::int32_t* ent, std::size_t w, std::size_t dense, const T* xt,
               std::size_t cb, std::size_t q0, std::size_t q1, T* zt) {
#ifdef RECALIGN_SPARSE_CLONES
    static const bool avx512 = __builtin_cpu_supports("avx512f"), avx2 = __builtin_cpu_supports("avx2");
    if (avx512) return add_chunks_avx512(ptr, ent, w, dense, xt, cb, q0, q1, zt);
    if (avx2) return add_chunks_avx2(ptr, ent, w, dense, xt, cb, q0, q1, zt);
#endif
    add_chunks(ptr, ent, w, dense, xt, cb, q0, q1, zt);
}

// Columns [lo, hi) of a (rows x cb, row-major) into X_sᵀ's chunked layout (above), in tiles of
// 16 x 16 that stay in the first-level cache. The inner loop reads along a's rows: reading down
// its columns (a stride of 4 or 8 KiB) maps a tile's 16 lines to one cache set.
template <class T>
void transpose_columns(const T* a, std::size_t rows, std::size_t cb, std::size_t lo, std::size_t hi, T* out) {
    constexpr std::size_t tile = 16, R = chunk_rows<T>;  // R is a multiple of the tile
    for (std::size_t r0 = 0; r0 < rows; r0 += tile) {
        const std::size_t r1 = std::min(rows, r0 + tile);
        T* chunk = out + (r0 / R) * cb * R - (r0 / R) * R;  // + c R + r gives (r / R) cb R + c R + r % R
        for (std::size_t c0 = lo; c0 < hi; c0 += tile) {
            const std::size_t c1 = std::min(hi, c0 + tile);
            for (std::size_t r = r0; r < r1; ++r)
                for (std::size_t c = c0; c < c1; ++c) chunk[c * R + r] = a[r * cb + c];
        }
    }
}
}  // namespace

// ζ distinct columns of [0, s) by Floyd's algorithm (each a 32-bit draw scaled to [0, m]: a
// bias below s / 2^32, 3e-8 at s = 110) and ζ signs, from stream (seed, 4, i).
void nystrom_sketch::sparse_row(std::size_t i, std::int32_t* out) const {
    const std::size_t s = width(), z = sparse_sign_nonzeros(s);
    const rng::stream st(options_.seed, sparse_omega_stream, i);
    const std::uint64_t sign_bits = st.bits(4);
    std::uint64_t word = 0;
    for (std::size_t k = 0, m = s - z; k < z; ++k, ++m) {
        if (k % 2 == 0) word = st.bits(k / 2);
        const std::uint64_t u = k % 2 == 0 ? (word & 0xffffffffu) : (word >> 32);
        std::size_t c = static_cast<std::size_t>((u * (m + 1)) >> 32);  // uniform on [0, m]
        for (std::size_t j = 0; j < k; ++j)
            if (static_cast<std::size_t>(std::abs(out[j]) - 1) == c) {
                c = m;  // taken: m itself, which no earlier draw could reach
                break;
            }
        const std::int32_t col = static_cast<std::int32_t>(c) + 1;
        out[k] = ((sign_bits >> k) & 1u) ? -col : col;
    }
}

// [Ω | G] of pass 0 by column blocks, each block's nonzeros by column (built once per sketch,
// never saved: a pure function of the seed), read off test_block(), the one definition of both.
void nystrom_sketch::build_sparse_index() {
    const std::size_t d = options_.dim, s = width(), w = s + options_.probes;
    const std::size_t z = sparse_sign_nonzeros(s) + options_.probes;  // nonzeros a row
    const std::size_t blocks = (d + column_block - 1) / column_block;
    std::vector<std::size_t> ptr(blocks * (w + 1));
    std::vector<std::int32_t> ent(d * z);
    std::vector<double> t(std::min(d, column_block) * w);
    for (std::size_t b = 0; b < blocks; ++b) {
        const std::size_t c0 = b * column_block, cb = std::min(column_block, d - c0);
        test_block(c0, cb, t.data());
        std::size_t* p = ptr.data() + b * (w + 1);
        p[0] = c0 * z;
        for (std::size_t c = 0; c < w; ++c) {  // by column, rows in increasing order
            std::size_t e = p[c];
            for (std::size_t j = 0; j < cb; ++j) {
                const double v = t[j * w + c];
                const std::int32_t local = static_cast<std::int32_t>(j) + 1;
                if (v != 0.0) ent[e++] = v > 0.0 ? local : -local;
            }
            p[c + 1] = e;
        }
    }
    sparse_ptr_ = std::move(ptr);
    sparse_ent_ = std::move(ent);
}

// Sweep 1 of pass 0 for the sparse sign Ω: the column sums and Σ X_s² exactly as the dense
// sweep forms them (the same conversion, the same bits), and Z = X_s [Ω | G] by signed additions
// of the block's rows transposed (X_sᵀ's rows, along the batch: vectorised), ζ a value for Ω and
// one per probe for the dense sign probes G, five probes at a time (a GEMM of the probes' ten
// columns per block was slower: OpenBLAS packs the whole block for them). Both threads of `two`
// share the block's conversion and transposition by columns, then its additions by chunks of
// the batch's rows.
template <class T>
double nystrom_sketch::first_sweep_sparse(const batch_view& x, const double* shift, double* sums, double* sums_t,
                                          detail::second_thread& two) {
    constexpr bool single = std::is_same_v<T, float>;
    const std::size_t d = options_.dim, rows = x.rows, s = width(), w = s + options_.probes;
    if (sparse_ptr_.empty()) build_sparse_index();
    std::vector<T>& xs = [this]() -> std::vector<T>& { if constexpr (single) return xf_; else return xb_; }();
    std::vector<T>& zs = [this]() -> std::vector<T>& { if constexpr (single) return zf_; else return zb_; }();
    std::vector<T>& xt = [this]() -> std::vector<T>& { if constexpr (single) return xtf_; else return xtb_; }();
    std::vector<T>& zt = [this]() -> std::vector<T>& { if constexpr (single) return ztf_; else return ztb_; }();
    constexpr std::size_t R = chunk_rows<T>;
    const std::size_t chunks = (rows + R - 1) / R;  // the last one padded
    xt.resize(std::min(d, column_block) * chunks * R);
    zt.assign(w * chunks * R, T(0));
    double ss = 0.0;
    for (std::size_t c0 = 0; c0 < d; c0 += column_block) {
        const std::size_t cb = std::min(column_block, d - c0);
        const std::size_t* ptr = sparse_ptr_.data() + (c0 / column_block) * (w + 1);
        auto prepare = [&](int part) {
            const auto [lo, hi] = half_of(cb, part);
            std::fill(ssc_.begin() + static_cast<std::ptrdiff_t>(lo), ssc_.begin() + static_cast<std::ptrdiff_t>(hi), 0.0);
            centered_block(x, shift, c0, cb, lo, hi, xs.data(), sums + c0, ssc_.data());
            transpose_columns(xs.data(), rows, cb, lo, hi, xt.data());
        };
        two.run(prepare);
        for (std::size_t c = 0; c < cb; ++c) ss += ssc_[c];
        for (std::size_t c = 0; c < w; ++c)  // cᵀ T
            for (std::size_t e = ptr[c]; e < ptr[c + 1]; ++e) {
                const std::int32_t p = sparse_ent_[e];
                const double v = sums[c0 + static_cast<std::size_t>(std::abs(p) - 1)];
                sums_t[c] += p > 0 ? v : -v;
            }
        auto add = [&](int part) {
            const std::size_t half = (chunks + 1) / 2;
            if (part == 0) add_block(ptr, sparse_ent_.data(), w, s, xt.data(), cb, 0, half, zt.data());
            else add_block(ptr, sparse_ent_.data(), w, s, xt.data(), cb, half, chunks, zt.data());
        };
        two.run(add);
    }
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t c = 0; c < w; ++c) zs[r * w + c] = zt[((r / R) * w + c) * R + r % R];
    return ss;
}

template double nystrom_sketch::first_sweep_sparse<double>(const batch_view&, const double*, double*, double*,
                                                           detail::second_thread&);
template double nystrom_sketch::first_sweep_sparse<float>(const batch_view&, const double*, double*, double*,
                                                          detail::second_thread&);

}  // namespace recalign

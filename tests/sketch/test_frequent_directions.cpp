// Frequent Directions: the deterministic guarantee against the exact scatter on data with a
// known spectrum, merge of shards, bit-identical resume, strong guarantee, truncations.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include <recalign/align/alignment.hpp>
#include <recalign/core/errors.hpp>
#include <recalign/core/blas.hpp>
#include <recalign/core/serial.hpp>
#include <recalign/sketch/frequent_directions.hpp>

#include "frequent_directions_shrink.hpp"
#include "sketch_helpers.hpp"

using namespace recalign;
using namespace sketch_testing;

namespace {
constexpr std::size_t D = 2000, N = 4000;

struct data_set {
    std::vector<double> x;
    exact_reference centered;
    mutable exact_reference uncentered_;  // computed on first use (one eigendecomposition)
    const exact_reference& uncentered() const {
        if (uncentered_.c.size() == 0) uncentered_ = exact(x, N, D, centering::uncentered, false);
        return uncentered_;
    }
};

const data_set& data(decay kind) {
    static data_set sets[2];
    data_set& s = sets[kind == decay::power_law ? 0 : 1];
    if (s.x.empty()) {
        s.x = synthetic(kind, N, D, kind == decay::power_law ? 11 : 12);
        // Only the alignment test (exponential set) needs the exact eigenvectors.
        s.centered = exact(s.x, N, D, centering::centered, kind == decay::exponential);
    }
    return s;
}

frequent_directions make(std::size_t d, std::size_t ell, centering c = centering::centered) {
    frequent_directions_options o;
    o.dim = d;
    o.ell = ell;
    o.center = c;
    return frequent_directions(o);
}

// ‖C − BᵀB‖₂ and the smallest eigenvalue of C − BᵀB (should be >= 0 up to rounding), with
// B the sketch plus, for the uncentered route, the row √n μᵀ.
struct sketch_error {
    double norm, min_eig;
};
sketch_error error_of(const frequent_directions& fd, const exact_reference& ref) {
    const std::size_t d = fd.dim();
    matrix_t b = fd.sketch();
    std::size_t m = b.shape(0);
    if (fd.options().center == centering::uncentered) {
        matrix_t bb = xt::zeros<double>({m + 1, d});
        std::copy(b.begin(), b.end(), bb.begin());
        for (std::size_t c = 0; c < d; ++c) bb(m, c) = std::sqrt(static_cast<double>(fd.n())) * fd.mean()(c);
        b = bb;
        ++m;
    }
    matrix_t diff = ref.c;
    blas::gemm_tn(d, d, m, -1.0, b.data(), b.data(), 1.0, diff.data());
    const vector_t ev = eigenvalues(diff);
    return {std::max(std::abs(ev(0)), std::abs(ev(d - 1))), ev(d - 1)};
}
}  // namespace

TEST_CASE("FD: ‖C − BᵀB‖₂ <= Δ <= tail / (ℓ + 1 − k), on power-law and exponential spectra", "[sketch][fd]") {
    const std::size_t ell = 40;
    for (decay kind : {decay::power_law, decay::exponential}) {
        for (centering c : {centering::centered, centering::uncentered}) {
            const data_set& s = data(kind);
            // The uncentered check once (power law): each costs a 2000 x 2000 eigendecomposition.
            if (kind == decay::exponential && c == centering::uncentered) continue;
            const exact_reference& ref = c == centering::centered ? s.centered : s.uncentered();
            INFO((kind == decay::power_law ? "power law" : "exponential") << ", " << centering_name(c));
            frequent_directions fd = make(D, ell, c);
            feed(fd, s.x, D, 0, N, 250);
            const double lam1 = ref.spec.eigenvalues(0), delta = fd.shrinkage();
            const double tol = 1e-10 * lam1;
            REQUIRE(delta > 0.0);
            const sketch_error e = error_of(fd, ref);
            CHECK(e.norm <= delta + tol);
            CHECK(e.min_eig >= -tol);  // FD never overestimates: C − BᵀB ⪰ 0
            for (std::size_t k = 0; k <= ell; ++k) CHECK(delta <= ref.tail_sum(k) / static_cast<double>(ell + 1 - k) + tol);

            const spectrum sp = frequent_directions_spectrum(fd);
            CHECK(sp.method == route::frequent_directions);
            CHECK(sp.center == c);
            CHECK(sp.n == N);
            CHECK(sp.rank() == ell);
            CHECK(sp.error_bound == delta);
            CHECK(std::isnan(sp.error_estimate));
            CHECK(sp.total == Approx(ref.spec.total).epsilon(1e-12));
            CHECK(orthonormality_defect(sp.basis) < 1e-12);
            for (std::size_t i = 0; i < sp.rank(); ++i) {
                const double gap = ref.spec.eigenvalues(i) - sp.eigenvalues(i);
                CHECK(gap >= -tol);
                CHECK(gap <= delta + tol);
                CHECK(sp.explained(i) == Approx(sp.eigenvalues(i) / sp.total + (i ? sp.explained(i - 1) : 0.0)));
            }
            // Robust FD's shift (Luo et al. 2017): λ_i + Δ/2 within ±Δ/2 of λ_i(C), same basis.
            frequent_directions_spectrum_options ro;
            ro.robust_shift = true;
            const spectrum rs = frequent_directions_spectrum(fd, ro);
            CHECK(rs.error_bound == 0.5 * delta);
            REQUIRE(rs.rank() == sp.rank());
            CHECK(std::memcmp(rs.basis.data(), sp.basis.data(), sp.basis.size() * sizeof(double)) == 0);
            for (std::size_t i = 0; i < rs.rank(); ++i) CHECK(std::abs(ref.spec.eigenvalues(i) - rs.eigenvalues(i)) <= 0.5 * delta + tol);
            // The captured variance of the sketch's top basis: within kΔ of the best (for any
            // unit v, vᵀCv >= vᵀBᵀBv, and Σ_{i<=k} λ_i(BᵀB) >= Σ_{i<=k} λ_i(C) − kΔ).
            for (std::size_t k : {1, 5, 20}) {
                const double cap = captured(ref.c, sp.basis, k);
                CHECK(ref.top_sum(k) - cap <= static_cast<double>(k) * delta + tol);
            }
        }
    }
}

TEST_CASE("FD: single-precision shrinks keep the bound up to float rounding and match double ones", "[sketch][fd]") {
    const data_set& s = data(decay::power_law);
    const exact_reference& ref = s.centered;
    const std::size_t ell = 40;
    frequent_directions f64 = make(D, ell);
    frequent_directions_options o = f64.options();
    o.float32_kernels = true;
    frequent_directions f32(o);
    CHECK(f32.config_hash() == f64.config_hash());  // not part of the configuration
    feed(f64, s.x, D, 0, N, 250);
    feed(f32, s.x, D, 0, N, 250);
    REQUIRE(f32.shrinks() == f64.shrinks());
    const double lam1 = ref.spec.eigenvalues(0), delta = f32.shrinkage();
    // Single-precision rounding of each shrink: about 1e-7 of λ_max(B Bᵀ) <= λ_1(C).
    const double tol = 1e-5 * lam1;
    CHECK(delta == Approx(f64.shrinkage()).epsilon(1e-4));
    const sketch_error e = error_of(f32, ref);
    CHECK(e.norm <= delta + tol);
    CHECK(e.min_eig >= -tol);
    const spectrum a = frequent_directions_spectrum(f32), b = frequent_directions_spectrum(f64);
    REQUIRE(a.rank() == b.rank());
    for (std::size_t i = 0; i < a.rank(); ++i) CHECK(std::abs(a.eigenvalues(i) - b.eigenvalues(i)) <= tol);
    for (std::size_t k : {1, 5, 20}) CHECK(ref.top_sum(k) - captured(ref.c, a.basis, k) <= static_cast<double>(k) * delta + tol);
    // A loaded sketch shrinks in double until switched; the switch changes nothing else.
    std::stringstream ss;
    f32.save(ss);
    frequent_directions back = frequent_directions::load(ss);
    CHECK_FALSE(back.options().float32_kernels);
    back.set_float32_kernels(true);
    CHECK(back.options().float32_kernels);
    CHECK(back.shrinkage() == f32.shrinkage());
}

TEST_CASE("FD: the bound holds against the exact scatter on adversarial streams, both precisions", "[sketch][fd]") {
    // Streams that break an inexact or badly accounted shrink: rows sorted by their leading
    // coordinate (the top direction drifts through the stream), a few rows repeated many times
    // in runs (a buffer holding copies of one row: tied and zero eigenvalues of B Bᵀ), and a
    // rank-deficient stream (rank 6 < ℓ: every shrink must find δ = 0 up to rounding and keep
    // the sketch exact). Odd batch sizes put Chan's mean-correction rows mid-buffer.
    const std::size_t d = 120, n = 1500, ell = 16;
    const std::vector<double> base = synthetic(decay::power_law, n, d, 21);
    std::vector<double> sorted = base, repeated(n * d), deficient(n * d, 0.0);
    std::vector<std::size_t> order(n);
    for (std::size_t r = 0; r < n; ++r) order[r] = r;
    std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) { return base[a * d] < base[b * d]; });
    for (std::size_t r = 0; r < n; ++r) std::copy_n(base.begin() + static_cast<std::ptrdiff_t>(order[r] * d), d, sorted.begin() + static_cast<std::ptrdiff_t>(r * d));
    for (std::size_t r = 0; r < n; ++r)  // 25 distinct rows, each in a run of 60 copies
        std::copy_n(base.begin() + static_cast<std::ptrdiff_t>((r / 60) * d), d, repeated.begin() + static_cast<std::ptrdiff_t>(r * d));
    for (std::size_t r = 0; r < n; ++r)  // rows in the span of the first 6 rows of `base`
        for (std::size_t j = 0; j < 6; ++j) {
            const double w = base[(r * 7 + j) % n * d + 1 + j];
            for (std::size_t c = 0; c < d; ++c) deficient[r * d + c] += w * base[j * d + c];
        }
    struct stream {
        const char* name;
        const std::vector<double>* x;
    };
    for (const stream& st : {stream{"sorted", &sorted}, stream{"repeated rows", &repeated}, stream{"rank 6", &deficient}}) {
        for (centering c : {centering::centered, centering::uncentered}) {
            const exact_reference ref = exact(*st.x, n, d, c, false);
            const double lam1 = ref.spec.eigenvalues(0);
            for (bool f32 : {false, true}) {
                INFO(st.name << ", " << centering_name(c) << (f32 ? ", single-precision shrinks" : ", double shrinks"));
                frequent_directions_options o;
                o.dim = d;
                o.ell = ell;
                o.center = c;
                o.float32_kernels = f32;
                frequent_directions fd(o);
                feed(fd, *st.x, d, 0, n, 37);
                REQUIRE(fd.shrinks() > 0);
                const double delta = fd.shrinkage(), tol = (f32 ? 1e-5 : 1e-10) * lam1;
                const sketch_error e = error_of(fd, ref);
                CHECK(e.norm <= delta + tol);
                CHECK(e.min_eig >= -tol);
                for (std::size_t k = 0; k <= ell; ++k) CHECK(delta <= ref.tail_sum(k) / static_cast<double>(ell + 1 - k) + tol);
                if (st.x == &deficient) CHECK(delta <= tol);  // rank < ℓ: nothing is lost
                const spectrum sp = frequent_directions_spectrum(fd);
                for (std::size_t k : {1, 3, 6})
                    if (k <= sp.rank()) CHECK(ref.top_sum(k) - captured(ref.c, sp.basis, k) <= static_cast<double>(k) * delta + tol);
            }
        }
    }
}

TEST_CASE("FD: one factorisation per ℓ new rows, never per row", "[sketch][fd]") {
    const data_set& s = data(decay::power_law);
    const std::size_t ell = 25, n = 1000;
    frequent_directions fd = make(D, ell);
    feed(fd, s.x, D, 0, n, 1);  // one row per batch: each batch also adds a Chan row
    // 2n − 1 rows arrived; each shrink consumes at least ℓ of them.
    CHECK(fd.shrinks() <= (2 * n) / ell + 1);
    CHECK(fd.shrinks() >= (2 * n - 1) / (2 * ell));
    CHECK(fd.rows() < 2 * ell);
}

TEST_CASE("FD: merging shards satisfies the bound and agrees with one stream within it", "[sketch][fd]") {
    const data_set& s = data(decay::power_law);
    const std::size_t ell = 40;
    frequent_directions one = make(D, ell);
    feed(one, s.x, D, 0, N, 500);
    // Uneven shards, different batch sizes.
    const std::size_t cuts[] = {0, 700, 2600, N};
    const std::size_t batches[] = {100, 333, 1000};
    frequent_directions merged = make(D, ell);
    for (int i = 0; i < 3; ++i) {
        frequent_directions shard = make(D, ell);
        feed(shard, s.x, D, cuts[i], cuts[i + 1], batches[i]);
        merged.merge(shard);
    }
    CHECK(merged.n() == N);
    CHECK(merged.trace() == Approx(one.trace()).epsilon(1e-12));
    for (std::size_t c = 0; c < D; ++c) CHECK(merged.mean()(c) == Approx(one.mean()(c)).epsilon(1e-12).margin(1e-13));
    const double lam1 = s.centered.spec.eigenvalues(0), tol = 1e-10 * lam1;
    const sketch_error e = error_of(merged, s.centered);
    CHECK(e.norm <= merged.shrinkage() + tol);
    CHECK(e.min_eig >= -tol);
    const spectrum a = frequent_directions_spectrum(one), b = frequent_directions_spectrum(merged);
    for (std::size_t i = 0; i < std::min(a.rank(), b.rank()); ++i)
        CHECK(std::abs(a.eigenvalues(i) - b.eigenvalues(i)) <= std::max(one.shrinkage(), merged.shrinkage()) + tol);
    // Merging into an empty sketch and merging an empty one.
    frequent_directions empty = make(D, ell);
    const std::string before = saved(merged);
    merged.merge(empty);
    CHECK(saved(merged) == before);
    empty.merge(one);
    CHECK(saved(empty) == saved(one));
}

TEST_CASE("FD: merging a sketch with itself doubles C", "[sketch][fd]") {
    const data_set& s = data(decay::exponential);
    frequent_directions fd = make(D, 30);
    feed(fd, s.x, D, 0, 1000, 250);
    const double t = fd.trace();
    fd.merge(fd);
    CHECK(fd.n() == 2000);
    CHECK(fd.trace() == Approx(2 * t).epsilon(1e-12));
}

TEST_CASE("FD: save/load mid-stream then continuing is bit-identical to not stopping", "[sketch][fd]") {
    const data_set& s = data(decay::power_law);
    for (centering c : {centering::centered, centering::uncentered}) {
        frequent_directions straight = make(D, 40, c);
        feed(straight, s.x, D, 0, N, 300);
        frequent_directions first = make(D, 40, c);
        feed(first, s.x, D, 0, 2100, 300);  // stops mid-stream with a partly filled buffer
        frequent_directions resumed = loaded<frequent_directions>(saved(first));
        CHECK(saved(resumed) == saved(first));
        feed(resumed, s.x, D, 2100, N, 300);
        CHECK(saved(resumed) == saved(straight));
        const spectrum a = frequent_directions_spectrum(straight), b = frequent_directions_spectrum(resumed);
        CHECK(std::memcmp(a.eigenvalues.data(), b.eigenvalues.data(), a.rank() * sizeof(double)) == 0);
        CHECK(std::memcmp(a.basis.data(), b.basis.data(), a.basis.size() * sizeof(double)) == 0);
    }
}

namespace {
// A saved sketch as a build before the kept-rows count wrote it: the flag cleared in the
// centering byte (payload offset 17: after the portable archive's endianness byte, D and ℓ)
// and the trailing count dropped.
std::string older_layout(const std::string& bytes) {
    std::istringstream is(bytes);
    checkpoint::framed f = checkpoint::read_framed(is, checkpoint::state_kind::frequent_directions, "frequent_directions", "test");
    std::string p = f.payload;
    REQUIRE((p.at(17) & 0x10) != 0);
    p[17] = static_cast<char>(p[17] & ~0x10);
    p.resize(p.size() - 8);
    std::ostringstream os;
    checkpoint::write_framed(os, f.h, p);
    return os.str();
}
}  // namespace

TEST_CASE("FD: a state in the layout before the kept-rows count resumes, forming the whole Gram matrix once", "[sketch][fd]") {
    const data_set& s = data(decay::power_law);
    const exact_reference& ref = s.centered;
    frequent_directions straight = make(D, 40);
    feed(straight, s.x, D, 0, N, 300);
    frequent_directions first = make(D, 40);
    feed(first, s.x, D, 0, 2100, 300);
    REQUIRE(first.shrinks() > 0);
    const std::string old = older_layout(saved(first));
    frequent_directions resumed = loaded<frequent_directions>(old);
    CHECK(saved(resumed) == old);  // nothing known about its rows: saved as it came
    CHECK(resumed.shrinkage() == first.shrinkage());
    feed(resumed, s.x, D, 2100, N, 300);
    CHECK(saved(resumed) != old);
    REQUIRE(resumed.shrinks() == straight.shrinks());
    // The same shrinks up to rounding (the kept rows' off-diagonal products, 0 in one, formed in the other).
    const double lam1 = ref.spec.eigenvalues(0), tol = 1e-10 * lam1;
    CHECK(resumed.shrinkage() == Approx(straight.shrinkage()).epsilon(1e-9));
    const sketch_error e = error_of(resumed, ref);
    CHECK(e.norm <= resumed.shrinkage() + tol);
    CHECK(e.min_eig >= -tol);
    const spectrum a = frequent_directions_spectrum(resumed), b = frequent_directions_spectrum(straight);
    REQUIRE(a.rank() == b.rank());
    for (std::size_t i = 0; i < a.rank(); ++i) CHECK(std::abs(a.eigenvalues(i) - b.eigenvalues(i)) <= 1e-9 * lam1);
}

TEST_CASE("FD: the shrink's Gram matrix from the kept rows' norms agrees with a full SYRK", "[sketch][fd]") {
    // 60 rows of a power-law stream, the first 25 replaced by orthogonal ones (as a shrink
    // leaves them): the Gram matrix from their norms equals the full one, in both precisions.
    const std::size_t m = 60, p = 25, d = 80;
    std::vector<double> x = synthetic(decay::power_law, m, d, 5);
    for (std::size_t i = 0; i < p; ++i) {  // Gram–Schmidt, then graded norms
        double* r = x.data() + i * d;
        for (int pass = 0; pass < 2; ++pass)
            for (std::size_t j = 0; j < i; ++j) {
                const double* q = x.data() + j * d;
                double dot = 0.0, qq = 0.0;
                for (std::size_t c = 0; c < d; ++c) dot += r[c] * q[c], qq += q[c] * q[c];
                for (std::size_t c = 0; c < d; ++c) r[c] -= dot / qq * q[c];
            }
        double nn = 0.0;
        for (std::size_t c = 0; c < d; ++c) nn += r[c] * r[c];
        for (std::size_t c = 0; c < d; ++c) r[c] *= 10.0 / (1.0 + static_cast<double>(i)) / std::sqrt(nn);
    }
    std::vector<double> norms(p);
    for (std::size_t i = 0; i < p; ++i) {
        norms[i] = 0.0;
        for (std::size_t c = 0; c < d; ++c) norms[i] += x[i * d + c] * x[i * d + c];
    }
    std::vector<double> full(m * m), g(m * m);
    blas::syrk_nt(m, d, 1.0, x.data(), 0.0, full.data());
    fd_detail::gram_of_rows(m, p, d, x.data(), norms.data(), g.data());
    double lam1 = 0.0;
    for (std::size_t i = 0; i < m; ++i) lam1 = std::max(lam1, full[i * m + i]);
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = i; j < m; ++j) CHECK(std::abs(g[i * m + j] - full[i * m + j]) <= 1e-12 * lam1);
    std::vector<float> xf(x.begin(), x.end()), gf(m * m);
    fd_detail::gram_of_rows(m, p, d, xf.data(), norms.data(), gf.data());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = i; j < m; ++j) CHECK(std::abs(gf[i * m + j] - full[i * m + j]) <= 1e-5 * lam1);
    // From the double rows a block of columns at a time (the f32 kernels' path): in one block, the
    // float call on the converted rows bit for bit; in blocks of 32 (three, the last of 16), the
    // same to float rounding.
    std::vector<float> scratch(m * d), gm(m * m);
    fd_detail::gram_of_rows(m, p, d, x.data(), norms.data(), gm.data(), d, scratch.data());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = i; j < m; ++j) REQUIRE(gm[i * m + j] == gf[i * m + j]);
    fd_detail::gram_of_rows(m, p, d, x.data(), norms.data(), gm.data(), 32, scratch.data());
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t j = i; j < m; ++j) CHECK(std::abs(gm[i * m + j] - full[i * m + j]) <= 1e-5 * lam1);
    // The last block (columns 64..80) is left converted, as the rotation then reads it.
    for (std::size_t i = 0; i < m; ++i)
        for (std::size_t c = 64; c < d; ++c) REQUIRE(scratch[i * 16 + c - 64] == static_cast<float>(x[i * d + c]));

}

TEST_CASE("FD: deterministic", "[sketch][fd]") {
    const data_set& s = data(decay::exponential);
    frequent_directions a = make(D, 20), b = make(D, 20);
    feed(a, s.x, D, 0, 1500, 128);
    feed(b, s.x, D, 0, 1500, 128);
    CHECK(saved(a) == saved(b));
}

TEST_CASE("FD: bad batches leave the state exactly as it was", "[sketch][fd]") {
    const std::size_t d = 30, ell = 4;
    const std::vector<double> x = synthetic(decay::power_law, 200, d, 3);
    frequent_directions fd = make(d, ell);
    feed(fd, x, d, 0, 7, 7);  // 7 rows in a 8-row buffer: the next batch would shrink
    const std::string before = saved(fd);
    std::vector<double> bad(x.begin(), x.begin() + 20 * d);
    bad[13 * d + 5] = std::numeric_limits<double>::quiet_NaN();
    CHECK_THROWS_AS(fd.update(batch_view(bad.data(), 20, d)), std::invalid_argument);
    CHECK(saved(fd) == before);
    bad[13 * d + 5] = std::numeric_limits<double>::infinity();
    CHECK_THROWS_AS(fd.update(batch_view(bad.data(), 20, d)), std::invalid_argument);
    CHECK(saved(fd) == before);
    CHECK_THROWS_AS(fd.update(batch_view(x.data(), 10, d - 1)), std::invalid_argument);
    CHECK(saved(fd) == before);
    std::vector<float> badf(20 * d, 1.0f);
    badf[19 * d] = std::numeric_limits<float>::quiet_NaN();
    CHECK_THROWS_AS(fd.update(batch_view(badf.data(), 20, d)), std::invalid_argument);
    CHECK(saved(fd) == before);
    // The state still works and equals a sketch that never saw the bad batches.
    frequent_directions clean = make(d, ell);
    feed(clean, x, d, 0, 7, 7);
    feed(fd, x, d, 7, 200, 20);
    feed(clean, x, d, 7, 200, 20);
    CHECK(saved(fd) == saved(clean));
}

TEST_CASE("FD: the shrink rotates its kept rows in place, a block of columns at a time, as one GEMM would", "[sketch][fd]") {
    // 5,000 columns in blocks of 2,048 (two whole blocks and a tail), 7 of 12 rows kept.
    const std::size_t m = 12, kept = 7, d = 5000, block = 2048;
    const std::vector<double> rows = synthetic(decay::power_law, m, d, 21), t = synthetic(decay::exponential, kept, m, 22);
    // Against one GEMM over all columns to within both products' rounding (each element a sum
    // of m products: |blocked - whole| <= 2 m eps sum_k |t_ik r_kj|). Not bit for bit: whether
    // OpenBLAS rounds a column the same in a 2,048-column call as in a 5,000-column one depends
    // on its kernels and thread split (Haswell's SGEMM on two threads of the Zen 5 VM does not).
    auto within_rounding = [&](const auto* tt, const auto* rr, const auto* blocked, const auto* whole, double eps) {
        std::size_t bad = 0;
        for (std::size_t i = 0; i < kept; ++i)
            for (std::size_t j = 0; j < d; ++j) {
                double bound = 0.0;
                for (std::size_t k = 0; k < m; ++k) bound += std::abs(static_cast<double>(tt[i * m + k]) * static_cast<double>(rr[k * d + j]));
                if (std::abs(static_cast<double>(blocked[i * d + j]) - static_cast<double>(whole[i * d + j])) > 2.0 * m * eps * bound) ++bad;
            }
        return bad;
    };
    std::vector<double> one(kept * d), in_place = rows, scratch(kept * block);
    blas::gemm_nn(kept, d, m, 1.0, t.data(), rows.data(), 0.0, one.data());
    fd_detail::rotate_rows_in_place(kept, m, d, t.data(), in_place.data(), block, scratch.data());
    CHECK(within_rounding(t.data(), rows.data(), in_place.data(), one.data(), std::numeric_limits<double>::epsilon()) == 0);
    std::vector<float> rf(rows.begin(), rows.end()), tf(t.begin(), t.end()), onef(kept * d), sf(kept * block);
    const std::vector<float> rows_f = rf;
    blas::gemm_nn(kept, d, m, 1.0f, tf.data(), rf.data(), 0.0f, onef.data());
    fd_detail::rotate_rows_in_place(kept, m, d, tf.data(), rf.data(), block, sf.data());
    CHECK(within_rounding(tf.data(), rows_f.data(), rf.data(), onef.data(), std::numeric_limits<float>::epsilon()) == 0);
    // Single precision on double rows (the f32 kernels' path, no float copy of the buffer): the
    // float rotation of the converted rows (the same blocks, so the same calls), bit for bit,
    // written back as doubles; the rows not kept untouched.
    for (bool last_converted : {false, true}) {
        std::vector<double> mixed = rows;
        std::vector<float> in(m * block, std::nanf("")), out(kept * block);
        if (last_converted)  // as gram_of_rows leaves it: the tail block (columns 4,096..5,000)
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t c = 4096; c < d; ++c) in[i * (d - 4096) + c - 4096] = static_cast<float>(rows[i * d + c]);
        fd_detail::rotate_rows_in_place(kept, m, d, tf.data(), mixed.data(), block, in.data(), out.data(), last_converted);
        for (std::size_t i = 0; i < kept * d; ++i) REQUIRE(mixed[i] == static_cast<double>(rf[i]));
        CHECK(std::equal(mixed.begin() + static_cast<std::ptrdiff_t>(kept * d), mixed.end(),
                         rows.begin() + static_cast<std::ptrdiff_t>(kept * d)));
    }
}

TEST_CASE("FD: a wide batch is converted a few rows at a time, and a bad value in a late chunk changes nothing", "[sketch][fd]") {
    // D = 150,528 (224x224x3): 400 uint8 rows are 60 MB as read; widened to doubles as a whole
    // they were 482 MB more (the update used to do that). The sketch itself (ℓ = 4) is 14 MB.
    const std::size_t d = 150528, ell = 4, n = 400;
    std::vector<std::uint8_t> x(n * d);
    std::uint64_t h = 7;
    for (std::size_t i = 0; i < x.size(); ++i) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        x[i] = static_cast<std::uint8_t>((h >> 33) % 251);
    }
    frequent_directions fd = make(d, ell), same = make(d, ell);
    fd.update(batch_view(x.data(), 3, d));  // the buffers allocated before the measurement
    same.update(batch_view(x.data(), 3, d));
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    REQUIRE(before > 0);
    fd.update(batch_view(x.data() + 3 * d, n - 3, d), 3);
    INFO("peak RSS grew by " << testing::peak_rss_kb() - before << " kB");
    CHECK(testing::peak_rss_kb() - before < 64 * 1024);
    // The same rows as doubles (converted whole by the caller): the same sketch, bit for bit.
    std::vector<double> xd(x.begin() + 3 * d, x.end());
    same.update(batch_view(xd.data(), n - 3, d), 3);
    CHECK(saved(fd) == saved(same));

    // A NaN in the batch's last row, several chunks after the first: refused naming its row,
    // before any row reaches the buffer (which the first chunk would have filled and shrunk).
    const std::string before_bad = saved(fd);
    std::vector<double> bad(xd.begin(), xd.begin() + 40 * d);
    bad[39 * d + 17] = std::numeric_limits<double>::quiet_NaN();
    try {
        fd.update(batch_view(bad.data(), 40, d), 1000);
        FAIL("a NaN was accepted");
    } catch (const std::invalid_argument& e) {
        CHECK(std::string(e.what()).find("1039") != std::string::npos);
    }
    CHECK(saved(fd) == before_bad);
}

TEST_CASE("FD: the finish reads the sketch in place and gives its exact eigenpairs", "[sketch][fd]") {
    // Oracle: B = [the sketch; √n μᵀ (uncentered)] copied, BᵀB formed and decomposed whole (D x D).
    const std::size_t d = 300, ell = 40, n = 700;
    const std::vector<double> x = synthetic(decay::power_law, n, d, 31);
    for (centering c : {centering::centered, centering::uncentered}) {
        frequent_directions fd = make(d, ell, c);
        feed(fd, x, d, 0, n, 90);
        REQUIRE(fd.rows() > ell);  // a shrunk sketch plus new rows: its Gram block is not diagonal
        matrix_t b = fd.sketch(c == centering::uncentered ? 1 : 0);
        if (c == centering::uncentered)
            for (std::size_t j = 0; j < d; ++j) b(b.shape(0) - 1, j) = std::sqrt(static_cast<double>(n)) * fd.mean()(j);
        matrix_t btb = xt::zeros<double>({d, d});
        blas::gemm_tn(d, d, b.shape(0), 1.0, b.data(), b.data(), 0.0, btb.data());
        const vector_t ref = eigenvalues(btb);
        const spectrum sp = frequent_directions_spectrum(fd, {ell, 1e-12});
        REQUIRE(sp.rank() == ell);
        CHECK(orthonormality_defect(sp.basis) < 1e-13);
        const double lam1 = ref(0);
        // BᵀB v = λ v for every pair returned, and λ as the dense decomposition gives it.
        matrix_t r = xt::zeros<double>({d, ell});
        blas::gemm_nn(d, ell, d, 1.0, btb.data(), sp.basis.data(), 0.0, r.data());
        for (std::size_t j = 0; j < ell; ++j) {
            double res = 0.0;
            for (std::size_t i = 0; i < d; ++i) res = std::max(res, std::abs(r(i, j) - sp.eigenvalues(j) * sp.basis(i, j)));
            INFO("pair " << j << ", λ / λ₁ = " << sp.eigenvalues(j) / lam1);
            CHECK(res <= 1e-12 * lam1);
            CHECK(std::abs(sp.eigenvalues(j) - ref(j)) <= 1e-13 * lam1 + 1e-12 * ref(j));
        }
    }
    // Fewer rows than ℓ and every direction asked for (rel_tol 0): BᵀB reproduced whole.
    frequent_directions few = make(d, ell);
    feed(few, x, d, 0, 25, 25);
    const spectrum all = frequent_directions_spectrum(few, {2 * ell + 1, 0.0});
    matrix_t b = few.sketch(), diff = xt::zeros<double>({d, d});
    blas::gemm_tn(d, d, b.shape(0), 1.0, b.data(), b.data(), 0.0, diff.data());
    const double top = all.eigenvalues(0);
    matrix_t ul = all.basis;
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < all.rank(); ++j) ul(i, j) *= all.eigenvalues(j);
    blas::gemm_nt(d, d, all.rank(), -1.0, ul.data(), all.basis.data(), 1.0, diff.data());
    double worst = 0.0;
    for (double v : diff) worst = std::max(worst, std::abs(v));
    CHECK(worst <= 1e-12 * top);
    CHECK(all.rank() <= 25);

    // D = 150,528 (224x224x3): the finish holds the Gram matrix of the rows and two rank x D
    // arrays beside the sketch (25 MB here); the thin SVD of a copy of the rows grew it by 63 MB.
    const std::size_t wide = 150528, we = 40;
    std::vector<double> rows(200 * wide);
    std::uint64_t h = 9;
    for (double& v : rows) {
        h = h * 6364136223846793005ULL + 1442695040888963407ULL;
        v = static_cast<double>((h >> 33) % 251);
    }
    frequent_directions big = make(wide, we, centering::uncentered);
    big.update(batch_view(rows.data(), 200, wide));
    rows = std::vector<double>();
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    REQUIRE(before > 0);
    const spectrum top10 = frequent_directions_spectrum(big, {10, 1e-12});
    INFO("peak RSS grew by " << testing::peak_rss_kb() - before << " kB");
    CHECK(testing::peak_rss_kb() - before < 48 * 1024);
    CHECK(top10.rank() == 10);
    CHECK(orthonormality_defect(top10.basis) < 1e-13);
}

TEST_CASE("FD: incompatible merges throw naming both values, before any change", "[sketch][fd]") {
    const std::vector<double> x = synthetic(decay::power_law, 50, 20, 5);
    frequent_directions a = make(20, 5);
    feed(a, x, 20, 0, 50, 10);
    const std::string before = saved(a);
    frequent_directions other_dim = make(21, 5), other_ell = make(20, 6), other_c = make(20, 5, centering::uncentered);
    std::vector<double> x21(50 * 21, 1.0);
    other_dim.update(batch_view(x21.data(), 50, 21));
    feed(other_ell, x, 20, 0, 50, 10);
    feed(other_c, x, 20, 0, 50, 10);
    CHECK_THROWS_WITH(a.merge(other_dim), Catch::Contains("20") && Catch::Contains("21"));
    CHECK_THROWS_WITH(a.merge(other_ell), Catch::Contains("5") && Catch::Contains("6"));
    CHECK_THROWS_WITH(a.merge(other_c), Catch::Contains("centered") && Catch::Contains("uncentered"));
    CHECK_THROWS_AS(a.merge(other_ell), std::invalid_argument);
    CHECK(saved(a) == before);
    CHECK_THROWS_AS(make(0, 3), std::invalid_argument);
    CHECK_THROWS_AS(make(3, 0), std::invalid_argument);
}

TEST_CASE("FD: every truncation and every byte flip of a saved sketch throws", "[sketch][fd]") {
    const std::size_t d = 12;
    const std::vector<double> x = synthetic(decay::exponential, 40, d, 9);
    frequent_directions fd = make(d, 3);
    feed(fd, x, d, 0, 40, 9);
    REQUIRE(fd.rows() > 0);
    CHECK(first_accepted_damage<frequent_directions>(saved(fd), 0x10) == "");
    // An empty sketch round-trips too.
    frequent_directions empty = make(d, 3);
    CHECK(saved(loaded<frequent_directions>(saved(empty))) == saved(empty));
}

TEST_CASE("FD: alignment_curve works on the sketch spectrum up to its rank", "[sketch][fd]") {
    // Exponential decay: the sketch's eigenvalues (which enter the curve as 1/λ_i) are within
    // Δ ≪ λ_20 of the exact ones, so the curves must agree up to the sketch's rank.
    const data_set& s = data(decay::exponential);
    moment_options mo;
    mo.dim = D;
    mo.targets = target_mode::dense;
    mo.classes = 2;
    moment_accumulator m(mo);
    std::vector<double> y(N * 2);
    for (std::size_t r = 0; r < N; ++r) {
        y[r * 2] = s.x[r * D] + s.x[r * D + 1];
        y[r * 2 + 1] = s.x[r * D + 7] - s.x[r * D + 100] + s.x[r * D + 1500];
    }
    for (std::size_t r = 0; r < N; r += 1000)
        m.update(batch_view(s.x.data() + r * D, 1000, D), target_view::dense_rows(batch_view(y.data() + r * 2, 1000, 2)));
    frequent_directions fd = make(D, 150);
    feed(fd, s.x, D, 0, N, 1000);
    const spectrum sp = frequent_directions_spectrum(fd, {20, 1e-12});
    REQUIRE(fd.shrinkage() < 0.05 * s.centered.spec.eigenvalues(19));
    for (alignment_measure measure : {alignment_measure::fit, alignment_measure::paper}) {
        alignment_options ao;
        ao.measure = measure;
        const cross_moments cross = m.cross(centering::centered);
        const alignment_result sk = alignment_curve(make_statistics(sp, fd.mean(), cross), ao);
        const alignment_result ex = alignment_curve(make_statistics(s.centered.spec, m.mean_x(), cross), ao);
        REQUIRE(sk.max_k == 20);
        REQUIRE(sk.curve.size() == 20);
        CHECK(sk.method == route::frequent_directions);
        CHECK(ex.curve(19) > 0.01);  // the targets do live in the top directions
        for (std::size_t k = 0; k < 20; ++k) {
            INFO("k = " << k + 1);
            CHECK(std::isfinite(sk.curve(k)));
            CHECK(sk.curve(k) == Approx(ex.curve(k)).epsilon(0.05).margin(1e-3));
        }
    }
}

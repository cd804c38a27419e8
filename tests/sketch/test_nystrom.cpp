// Nyström sketch: 1-pass vs 2-pass accuracy against the exact top-k (captured variance and
// principal angles) on data with a known spectrum, the a-posteriori error estimate against
// the true error, merge = one stream, bit-identical resume mid-pass, refusals, truncations.
#include <catch2/catch.hpp>

#include <cblas.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <thread>
#include <vector>

#include <recalign/core/errors.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>

#include "nystrom_basis.hpp"   // internal (lib/sketch): detail::reconstruct
#include "second_thread.hpp"  // internal (lib/sketch): allow()
#include "sketch_helpers.hpp"

using namespace recalign;
using namespace sketch_testing;

namespace {
constexpr std::size_t D = 2000, N = 4000, K = 20;

struct data_set {
    std::vector<double> x;
    exact_reference centered;
};

const data_set& data(decay kind) {
    static data_set sets[2];
    data_set& s = sets[kind == decay::power_law ? 0 : 1];
    if (s.x.empty()) {
        s.x = synthetic(kind, N, D, kind == decay::power_law ? 21 : 22);
        s.centered = exact(s.x, N, D, centering::centered);
    }
    return s;
}

nystrom_options opts(std::size_t d, std::size_t k, std::size_t p, std::uint64_t seed,
                     centering c = centering::centered, std::size_t probes = 10) {
    nystrom_options o = nystrom_opts(d, k, p, seed, probes);
    o.center = c;
    return o;
}

struct quality {
    double captured_error, sin2, sin2_top5, frob_true, frob_est, spectral_true;
};

quality judge(const spectrum& sp, const exact_reference& ref, bool spectral) {
    quality q{};
    q.captured_error = captured_error(ref, sp.basis, K);
    q.sin2 = sin2_sum(ref.spec.basis, sp.basis, K);
    q.sin2_top5 = sin2_max_angle(ref.spec.basis, sp.basis, 5);
    q.frob_true = frobenius_error(ref, sp.basis, sp.eigenvalues);
    q.frob_est = sp.error_estimate;
    if (spectral) {
        matrix_t diff = ref.c;
        const std::size_t k = sp.rank();
        matrix_t ul = sp.basis;
        for (std::size_t i = 0; i < D; ++i)
            for (std::size_t j = 0; j < k; ++j) ul(i, j) *= sp.eigenvalues(j);
        blas::gemm_nt(D, D, k, -1.0, ul.data(), sp.basis.data(), 1.0, diff.data());
        const vector_t ev = eigenvalues(diff);
        q.spectral_true = std::max(std::abs(ev(0)), std::abs(ev(D - 1)));
    }
    return q;
}
}  // namespace

TEST_CASE("Nyström: two passes are clearly more accurate than one; the error estimate tracks the true error",
          "[sketch][nystrom]") {
    for (decay kind : {decay::power_law, decay::exponential}) {
        const data_set& s = data(kind);
        const exact_reference& ref = s.centered;
        INFO((kind == decay::power_law ? "power law" : "exponential"));
        nystrom_sketch sk(opts(D, K, 10, 1234));
        feed(sk, s.x, D, 0, N, 500);
        CHECK(sk.pass() == 0);
        const spectrum one = nystrom_spectrum(sk);
        sk.next_pass();
        CHECK(sk.pass() == 1);
        CHECK(sk.empty());
        CHECK_THROWS_AS(nystrom_spectrum(sk), std::logic_error);
        feed(sk, s.x, D, 0, N, 500);  // the second read of the data
        const spectrum two = nystrom_spectrum(sk);
        const quality q1 = judge(one, ref, kind == decay::power_law), q2 = judge(two, ref, kind == decay::power_law);
        INFO("captured-variance error 1-pass " << q1.captured_error << ", 2-pass " << q2.captured_error);
        INFO("Σ sin² principal angles (top " << K << ") 1-pass " << q1.sin2 << ", 2-pass " << q2.sin2
                                          << "; sin² largest angle (top 5) " << q1.sin2_top5 << ", " << q2.sin2_top5);
        INFO("‖C − Ĉ‖_F true/estimate 1-pass " << q1.frob_true << "/" << q1.frob_est << ", 2-pass " << q2.frob_true
                                               << "/" << q2.frob_est);
        for (const spectrum* sp : {&one, &two}) {
            CHECK(sp->method == route::nystrom);
            CHECK(sp->rank() == K);
            CHECK(sp->n == N);
            CHECK(sp->status == solver_status::converged);
            CHECK(std::isnan(sp->error_bound));
            CHECK(sp->total == Approx(ref.spec.total).epsilon(1e-12));
            CHECK(orthonormality_defect(sp->basis) < 1e-10);
            // Ĉ ⪯ C: no Nyström eigenvalue exceeds the exact one (up to the shift's rounding).
            for (std::size_t i = 0; i < K; ++i) CHECK(sp->eigenvalues(i) <= ref.spec.eigenvalues(i) * (1 + 1e-9));
        }
        CHECK(q1.captured_error > 0.0);
        CHECK(q2.captured_error >= -1e-12);
        CHECK(q2.captured_error < 0.5 * q1.captured_error);  // clearly below
        CHECK(q2.sin2 < 0.5 * q1.sin2);
        CHECK(q2.sin2_top5 < 0.5 * q1.sin2_top5);
        CHECK(q2.captured_error < 0.05);
        // The probe estimate of ‖C − Ĉ‖_F is unbiased in the square; with 10 probes it lands
        // well within a factor 2.
        for (const quality* q : {&q1, &q2}) {
            CHECK(q->frob_est > 0.5 * q->frob_true);
            CHECK(q->frob_est < 2.0 * q->frob_true);
        }
        if (kind == decay::power_law) {
            INFO("‖C − Ĉ‖₂ 1-pass " << q1.spectral_true << ", 2-pass " << q2.spectral_true);
            // The Frobenius estimate is (with margin) an upper bound of the spectral error.
            CHECK(q1.frob_est > q1.spectral_true);
            CHECK(q2.frob_est > q2.spectral_true);
            CHECK(q2.spectral_true < q1.spectral_true);
        }
    }
}

TEST_CASE("Nyström: uncentered route against the exact uncentered top-k", "[sketch][nystrom]") {
    const data_set& s = data(decay::exponential);
    const exact_reference ref = exact(s.x, N, D, centering::uncentered);
    nystrom_sketch sk(opts(D, K, 10, 99, centering::uncentered));
    feed(sk, s.x, D, 0, N, 1000);
    const spectrum one = nystrom_spectrum(sk);
    sk.next_pass();
    feed(sk, s.x, D, 0, N, 1000);
    const spectrum two = nystrom_spectrum(sk);
    CHECK(one.center == centering::uncentered);
    CHECK(two.total == Approx(ref.spec.total).epsilon(1e-12));
    // The mean direction dominates the uncentered matrix: it must be found exactly.
    CHECK(two.eigenvalues(0) == Approx(ref.spec.eigenvalues(0)).epsilon(1e-8));
    const double e1 = captured_error(ref, one.basis, K), e2 = captured_error(ref, two.basis, K);
    INFO("uncentered captured-variance error 1-pass " << e1 << ", 2-pass " << e2);
    CHECK(e2 < 0.5 * e1);
    CHECK(e2 < 0.01);
}

TEST_CASE("Nyström: the uncentered finish adds n μ μᵀT to the columns it copies, not to a copy of the range",
          "[sketch][nystrom]") {
    // The same reconstruction as from the explicit range() (the route before), to rounding.
    const data_set& s = data(decay::exponential);
    nystrom_sketch sk(opts(D, K, 10, 7, centering::uncentered));
    feed(sk, s.x, D, 0, N, 1000);
    const detail::reconstruction ref = detail::reconstruct(sk, sk.range());
    REQUIRE(ref.info == 0);
    const spectrum got = nystrom_spectrum(sk);
    REQUIRE(got.rank() == K);
    for (std::size_t j = 0; j < K; ++j) {
        CHECK(std::abs(got.eigenvalues(j) - ref.lambda(j)) <= 1e-12 * ref.lambda(0));
        double dot = 0.0;
        for (std::size_t i = 0; i < D; ++i) dot += got.basis(i, j) * ref.u(i, j);
        if (ref.lambda(j) - (j + 1 < ref.lambda.size() ? ref.lambda(j + 1) : 0.0) > 1e-6 * ref.lambda(0))
            CHECK(std::abs(std::abs(dot) - 1.0) <= 1e-9);
    }
    // At D = 150,528 (224x224x3), rank 40 (50 columns and 10 probes): the finish holds the basis
    // block (D x 50), its U and the returned basis beside the state, 121 MB here; the copy of the
    // whole uncentered range it made first (D x 60) took it to 193 MB.
    const std::size_t wide = 150528;
    nystrom_sketch big(opts(wide, 40, 10, 3, centering::uncentered));
    {
        std::vector<double> rows(60 * wide);
        std::uint64_t h = 5;
        for (double& v : rows) {
            h = h * 6364136223846793005ULL + 1442695040888963407ULL;
            v = static_cast<double>((h >> 33) % 251);
        }
        big.update(batch_view(rows.data(), 60, wide));
    }
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    REQUIRE(before > 0);
    const spectrum top = nystrom_spectrum(big);
    INFO("peak RSS grew by " << testing::peak_rss_kb() - before << " kB");
    CHECK(testing::peak_rss_kb() - before < 150 * 1024);
    CHECK(top.rank() == 40);
}

TEST_CASE("Nyström: merging shards equals one stream to rounding, in every pass", "[sketch][nystrom]") {
    const data_set& s = data(decay::power_law);
    for (centering c : {centering::centered, centering::uncentered}) {
        const nystrom_options o = opts(D, 8, 4, 77, c, 3);
        nystrom_sketch one(o);
        feed(one, s.x, D, 0, N, 400);
        const std::size_t cuts[] = {0, 999, 3001, N};
        const std::size_t batches[] = {64, 1000, 250};
        nystrom_sketch merged(o);
        std::vector<nystrom_sketch> shards;
        for (int i = 0; i < 3; ++i) {
            shards.emplace_back(o);
            feed(shards.back(), s.x, D, cuts[i], cuts[i + 1], batches[i]);
            merged.merge(shards.back());
        }
        CHECK(merged.n() == N);
        CHECK(rel_diff(merged.centered_range(), one.centered_range()) < 1e-12);
        CHECK(rel_diff(merged.range(), one.range()) < 1e-12);
        CHECK(merged.trace() == Approx(one.trace()).epsilon(1e-13));
        const spectrum a = nystrom_spectrum(one), b = nystrom_spectrum(merged);
        for (std::size_t i = 0; i < a.rank(); ++i) CHECK(b.eigenvalues(i) == Approx(a.eigenvalues(i)).epsilon(1e-9));
        // Pass 1: the merged state starts the next pass; each shard resumes from a copy of it.
        merged.next_pass();
        const std::string start = saved(merged);
        nystrom_sketch merged2 = loaded<nystrom_sketch>(start);
        for (int i = 0; i < 3; ++i) {
            nystrom_sketch shard = loaded<nystrom_sketch>(start);
            feed(shard, s.x, D, cuts[i], cuts[i + 1], batches[i]);
            merged2.merge(shard);
        }
        nystrom_sketch one2 = loaded<nystrom_sketch>(start);
        feed(one2, s.x, D, 0, N, 400);
        CHECK(merged2.pass() == 1);
        CHECK(rel_diff(merged2.range(), one2.range()) < 1e-12);
        // A shard still in pass 0, or one whose pass 1 began from a different basis, is refused.
        CHECK_THROWS_WITH(merged2.merge(shards[0]), Catch::Contains("pass") && Catch::Contains("1") && Catch::Contains("0"));
        nystrom_sketch other = shards[1];
        other.next_pass();
        CHECK_THROWS_WITH(merged2.merge(other), Catch::Contains("power-iteration basis"));
    }
}

TEST_CASE("Nyström: save/load at any point, mid-pass included, continues bit-identically", "[sketch][nystrom]") {
    const data_set& s = data(decay::exponential);
    const nystrom_options o = opts(D, 10, 5, 5);
    nystrom_sketch straight(o);
    feed(straight, s.x, D, 0, N, 300);
    straight.next_pass();
    feed(straight, s.x, D, 0, N, 300);

    nystrom_sketch a(o);
    feed(a, s.x, D, 0, 1500, 300);  // mid pass 0
    nystrom_sketch b = loaded<nystrom_sketch>(saved(a));
    CHECK(saved(b) == saved(a));
    feed(b, s.x, D, 1500, N, 300);
    nystrom_sketch c = loaded<nystrom_sketch>(saved(b));  // end of pass 0
    c.next_pass();
    nystrom_sketch d = loaded<nystrom_sketch>(saved(c));  // start of pass 1, no data yet
    feed(d, s.x, D, 0, 2700, 300);
    nystrom_sketch e = loaded<nystrom_sketch>(saved(d));  // mid pass 1
    feed(e, s.x, D, 2700, N, 300);
    CHECK(saved(e) == saved(straight));
    const spectrum x = nystrom_spectrum(straight), y = nystrom_spectrum(e);
    CHECK(std::memcmp(x.eigenvalues.data(), y.eigenvalues.data(), x.rank() * sizeof(double)) == 0);
    CHECK(std::memcmp(x.basis.data(), y.basis.data(), x.basis.size() * sizeof(double)) == 0);
    CHECK(std::memcmp(&x.error_estimate, &y.error_estimate, sizeof(double)) == 0);
}

TEST_CASE("Nyström: Ω is a pure function of the seed (regenerated, never stored)", "[sketch][nystrom]") {
    const nystrom_options o = opts(300, 5, 5, 42);
    nystrom_sketch a(o), b(o);
    CHECK(std::memcmp(a.test_matrix().data(), b.test_matrix().data(), a.test_matrix().size() * sizeof(double)) == 0);
    nystrom_sketch c(opts(300, 5, 5, 43));
    CHECK(std::memcmp(a.test_matrix().data(), c.test_matrix().data(), a.test_matrix().size() * sizeof(double)) != 0);
    // The checkpoint of an empty pass-0 sketch holds no D x s test matrix.
    CHECK(saved(a).size() < 64 + 200 + 8 * (300 + 300 * (10 + 10)) + 100);
    // Roughly standard normal entries.
    double m = 0.0, v = 0.0;
    for (double t : a.test_matrix()) m += t;
    m /= static_cast<double>(a.test_matrix().size());
    for (double t : a.test_matrix()) v += (t - m) * (t - m);
    v /= static_cast<double>(a.test_matrix().size());
    CHECK(std::abs(m) < 0.05);
    CHECK(std::abs(v - 1.0) < 0.05);
}

TEST_CASE("Nyström: merging different seeds, shapes or settings throws naming both values", "[sketch][nystrom]") {
    const std::size_t d = 40;
    const std::vector<double> x = synthetic(decay::power_law, 60, d, 4);
    nystrom_sketch a(opts(d, 4, 3, 1));
    feed(a, x, d, 0, 60, 20);
    const std::string before = saved(a);
    auto fed = [&](const nystrom_options& o) {
        nystrom_sketch s(o);
        if (o.dim == d) feed(s, x, d, 0, 60, 20);
        return s;
    };
    CHECK_THROWS_WITH(a.merge(fed(opts(d, 4, 3, 2))), Catch::Contains("seed 1 and 2"));
    CHECK_THROWS_WITH(a.merge(fed(opts(d, 5, 3, 1))), Catch::Contains("4 + 3") && Catch::Contains("5 + 3"));
    CHECK_THROWS_WITH(a.merge(fed(opts(d, 4, 2, 1))), Catch::Contains("4 + 3") && Catch::Contains("4 + 2"));
    CHECK_THROWS_WITH(a.merge(fed(opts(d + 1, 4, 3, 1))), Catch::Contains("dimension 40 and 41"));
    CHECK_THROWS_WITH(a.merge(fed(opts(d, 4, 3, 1, centering::uncentered))),
                      Catch::Contains("centered and uncentered"));
    CHECK_THROWS_WITH(a.merge(fed(opts(d, 4, 3, 1, centering::centered, 5))), Catch::Contains("probes 10 and 5"));
    CHECK_THROWS_AS(a.merge(fed(opts(d, 4, 3, 2))), std::invalid_argument);
    CHECK(saved(a) == before);
    // Merging an empty sketch is a no-op; bad configurations are refused at construction.
    a.merge(nystrom_sketch(opts(d, 4, 3, 1)));
    CHECK(saved(a) == before);
    CHECK_THROWS_AS(nystrom_sketch(opts(d, 0, 3, 1)), std::invalid_argument);
    CHECK_THROWS_AS(nystrom_sketch(opts(d, 30, 11, 1)), std::invalid_argument);
    CHECK_THROWS_AS(nystrom_sketch(opts(0, 1, 0, 1)), std::invalid_argument);
    CHECK_THROWS_AS(nystrom_spectrum(a, {8}), std::invalid_argument);
    nystrom_sketch empty(opts(d, 4, 3, 1));
    CHECK_THROWS_AS(empty.next_pass(), std::logic_error);
}

TEST_CASE("Nyström: bad batches leave the state exactly as it was", "[sketch][nystrom]") {
    const std::size_t d = 30;
    const std::vector<double> x = synthetic(decay::power_law, 100, d, 6);
    for (int pass = 0; pass < 2; ++pass) {
        nystrom_sketch sk(opts(d, 4, 2, 8, centering::centered, 3));
        feed(sk, x, d, 0, 100, 25);
        if (pass == 1) {
            sk.next_pass();
            feed(sk, x, d, 0, 50, 25);
        }
        const std::string before = saved(sk);
        std::vector<double> bad(x.begin(), x.begin() + 10 * d);
        bad[4 * d + 29] = -std::numeric_limits<double>::infinity();
        CHECK_THROWS_AS(sk.update(batch_view(bad.data(), 10, d)), std::invalid_argument);
        CHECK(saved(sk) == before);
        CHECK_THROWS_AS(sk.update(batch_view(x.data(), 3, d + 2)), std::invalid_argument);
        CHECK(saved(sk) == before);
        std::vector<std::uint8_t> u8(5 * 29, 3);
        CHECK_THROWS_AS(sk.update(batch_view(u8.data(), 5, 29)), std::invalid_argument);
        CHECK(saved(sk) == before);
        // Empty batches change nothing either.
        sk.update(batch_view(x.data(), 0, d));
        CHECK(saved(sk) == before);
    }
}

TEST_CASE("Nyström: every truncation and every byte flip of a saved sketch throws", "[sketch][nystrom]") {
    const std::size_t d = 10;
    const std::vector<double> x = synthetic(decay::exponential, 30, d, 7);
    nystrom_sketch sk(opts(d, 2, 1, 3, centering::centered, 2));
    feed(sk, x, d, 0, 30, 7);
    std::vector<std::string> states{saved(sk)};
    sk.next_pass();
    feed(sk, x, d, 0, 12, 7);
    states.push_back(saved(sk));  // mid pass 1: holds Q as well
    for (const std::string& bytes : states) CHECK(first_accepted_damage<nystrom_sketch>(bytes) == "");
}

TEST_CASE("Nyström: the opt-in float32 kernels agree with the double path to single precision", "[sketch][nystrom]") {
    const data_set& s = data(decay::power_law);
    const std::size_t n = 2000;
    std::vector<float> xf(s.x.begin(), s.x.begin() + static_cast<std::ptrdiff_t>(n * D));
    nystrom_options o = opts(D, 10, 5, 3);
    nystrom_sketch dbl(o);
    o.float32_kernels = true;
    nystrom_sketch sgl(o);
    for (std::size_t r = 0; r < n; r += 500) {
        dbl.update(batch_view(xf.data() + r * D, 500, D), r);
        sgl.update(batch_view(xf.data() + r * D, 500, D), r);
    }
    CHECK(rel_diff(sgl.centered_range(), dbl.centered_range()) < 1e-4);
    CHECK(sgl.trace() == Approx(dbl.trace()).epsilon(1e-12));
    const spectrum a = nystrom_spectrum(dbl), b = nystrom_spectrum(sgl);
    for (std::size_t i = 0; i < a.rank(); ++i) CHECK(b.eigenvalues(i) == Approx(a.eigenvalues(i)).epsilon(1e-4));
    // Not part of the configuration: the two merge, and the flag survives save/load.
    nystrom_sketch both = dbl;
    both.merge(sgl);
    CHECK(both.n() == 2 * n);
    nystrom_sketch back = loaded<nystrom_sketch>(saved(sgl));
    CHECK(back.options().float32_kernels);
    CHECK(saved(back) == saved(sgl));
    // Its strong guarantee holds too.
    xf[777] = std::numeric_limits<float>::quiet_NaN();
    const std::string before = saved(sgl);
    CHECK_THROWS_AS(sgl.update(batch_view(xf.data(), 500, D)), std::invalid_argument);
    CHECK(saved(sgl) == before);
}

TEST_CASE("Nyström: the default test matrix gives the top eigenpairs at every dimension, tiny ones included",
          "[sketch][nystrom]") {
    // A small square ±1 test matrix is often singular, and then the Cholesky of Ωᵀ(Y + νΩ)
    // fails at every shift (seen from scikit-learn's estimator checks: D = 3, rank 1 + 2
    // oversampling gave no eigenpair; here D = 5 broke down for 5 of 20 seeds). The default
    // resolves to Gaussian below D = 64.
    const std::size_t n = 40;
    std::size_t small_failures = 0;
    for (std::size_t d : {2u, 3u, 5u, 63u, 64u}) {
        const std::vector<double> x = synthetic(decay::exponential, n, d, 5);
        const exact_reference ref = exact(x, n, d, centering::centered);
        std::size_t failures_with_signs = 0;
        for (std::uint64_t seed = 0; seed < 20; ++seed) {
            nystrom_options o = opts(d, 1, d - 1, seed, centering::centered, std::min<std::size_t>(d, 3));
            nystrom_sketch sk(o);
            CHECK(sk.options().test == (d >= 64 ? nystrom_test::signs : nystrom_test::gaussian));
            feed(sk, x, d, 0, n, 16);
            const spectrum s = nystrom_spectrum(sk);
            INFO("D = " << d << ", seed " << seed);
            REQUIRE(s.eigenvalues.size() == 1);
            // s = D columns span everything: the top eigenvalue is exact to rounding.
            CHECK(s.eigenvalues(0) == Approx(ref.spec.eigenvalues(0)).epsilon(1e-8));
            o.test = nystrom_test::signs;
            nystrom_sketch forced(o);
            feed(forced, x, d, 0, n, 16);
            if (nystrom_spectrum(forced).eigenvalues.size() == 0) ++failures_with_signs;
        }
        // What the default avoids (a breakdown is reported, never a wrong eigenpair).
        if (d < 64) small_failures += failures_with_signs;
    }
    // What the default avoids (a breakdown is reported as such, never as a wrong eigenpair).
    CHECK(small_failures > 0);
}

TEST_CASE("Nyström: the update's second thread changes no bit (u8, f32, f64 input; both kernels; two passes)",
          "[sketch][nystrom]") {
    // Batches of 1000 x 2000 (over the 2^20 elements where update() runs on two threads; two
    // column blocks, 1024 and 976: each thread converts one, regenerates its block of the test
    // matrix and runs its GEMMs with OpenBLAS on one thread; the sparse Ω's first sweep splits
    // each block's conversion 512 + 512 and 496 + 480 instead) against the same stream with the
    // second thread disallowed (the halves one after the other, OpenBLAS on one thread as well;
    // the sparse sweep keeps the BLAS's threads). Without two cores and two BLAS threads there is
    // nothing to compare.
    if (openblas_get_num_threads() < 2 || std::thread::hardware_concurrency() < 2) {
        WARN("one core or one BLAS thread: no second thread to compare against");
        return;
    }
    const data_set& s = data(decay::power_law);
    const std::size_t n = 2000;
    std::vector<float> xf(s.x.begin(), s.x.begin() + static_cast<std::ptrdiff_t>(n * D));
    std::vector<std::uint8_t> xu(n * D);
    for (std::size_t i = 0; i < n * D; ++i) xu[i] = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, 128.0 + 20.0 * s.x[i])));
    for (int input = 0; input < 3; ++input) {
        for (const int kernels : {0, 1, 2}) {  // double, float32, float32 with the sparse sign Ω
            const bool f32 = kernels > 0;
            auto stream = [&] {
                nystrom_options o = opts(D, 10, 5, 3);
                o.float32_kernels = f32;
                if (kernels == 2) o.test = nystrom_test::sparse_signs;
                nystrom_sketch sk(o);
                for (int pass = 0; pass < 2; ++pass) {
                    if (pass == 1) sk.next_pass();
                    for (std::size_t r = 0; r < n; r += 1000) {
                        batch_view b = input == 0 ? batch_view(xu.data() + r * D, 1000, D)
                                     : input == 1 ? batch_view(xf.data() + r * D, 1000, D)
                                                  : batch_view(s.x.data() + r * D, 1000, D);
                        if (input == 0) b.scale = 1.0 / 255.0;
                        sk.update(b, r);
                    }
                }
                return saved(sk);
            };
            using recalign::detail::second_thread;
            const std::uint64_t before = second_thread::started();
            const int blas_threads = openblas_get_num_threads();
            const std::string two = stream();
            CHECK(second_thread::started() == before + 4);  // one per update
            CHECK(openblas_get_num_threads() == blas_threads);  // restored after each update
            second_thread::allow(false);
            const std::string one = stream();
            second_thread::allow(true);
            CHECK(second_thread::started() == before + 4);
            INFO("input " << input << ", kernels " << kernels);
            CHECK(two == one);
        }
    }
}

TEST_CASE("Nyström: the update split by column blocks agrees with the unsplit one to rounding", "[sketch][nystrom]") {
    // Batches of 1000 x 2000 take the block halves (each thread its own blocks and GEMMs, the
    // halves' X T added after); batches of 100 (below 2^20 elements) the unsplit sweeps. The
    // same rows, so the same C [Ω | G] up to the rounding of the two orders, in both passes.
    const data_set& s = data(decay::power_law);
    const std::size_t n = 2000;
    for (const bool f32 : {false, true}) {
        CAPTURE(f32);
        auto stream = [&](std::size_t rows) {
            nystrom_options o = opts(D, 10, 5, 3);
            o.float32_kernels = f32;
            nystrom_sketch sk(o);
            std::vector<matrix_t> ranges;
            for (int pass = 0; pass < 2; ++pass) {
                if (pass == 1) sk.next_pass();
                for (std::size_t r = 0; r < n; r += rows) sk.update(batch_view(s.x.data() + r * D, rows, D), r);
                ranges.push_back(sk.range());
            }
            return ranges;
        };
        const std::vector<matrix_t> split = stream(1000), plain = stream(100);
        for (int pass = 0; pass < 2; ++pass) {
            CAPTURE(pass);
            // float32 products: each order rounds its own single-precision GEMMs
            CHECK(rel_diff(split[pass], plain[pass]) < (f32 ? 1e-5 : 1e-12));
        }
    }
}

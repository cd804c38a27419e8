// The verification pass (MATH.md §7): numbers about a representation V computed from the
// restricted moments alone equal the same numbers computed with the full D x D statistics.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <optional>
#include <random>

#include <xtensor/xrandom.hpp>

#include <recalign/align/incremental_refinement.hpp>
#include <recalign/align/sketch_denoising.hpp>
#include <recalign/align/verification.hpp>
#include <recalign/io/spill.hpp>
#include <recalign/core/blas.hpp>
#include <recalign/spectral/eigen.hpp>
#include <recalign/spectral/subspace.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/stats/class_moments.hpp>

#include "../common/helpers.hpp"
#include "../data_sets.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

namespace {
// The same shape and the same bits (NaN included).
template <class A, class B>
bool same_bits(const A& a, const B& b) {
    return a.shape() == b.shape() && std::memcmp(a.data(), b.data(), a.size() * sizeof(double)) == 0;
}

struct data {
    testing::fashion_subset f;
    moment_accumulator acc;
    patch_blocks blocks;
};

data prepare(std::size_t n) {
    testing::fashion_subset f = testing::load_fashion(n, true);
    moment_accumulator acc({f.dim, target_mode::class_ids, 10});
    patch_blocks_options po;
    po.shape = {14, 14, 1, image_layout::hwc};
    po.patch_h = po.patch_w = 2;
    patch_blocks blocks(po);
    acc.update(batch_view(f.row(0), f.n, f.dim), target_view::class_ids(f.y.data(), f.n));
    blocks.update(batch_view(f.row(0), f.n, f.dim));
    return {std::move(f), std::move(acc), std::move(blocks)};
}

// The verification pass over the same rows, in batches.
restricted_statistics verify(const data& d, const matrix_t& v, centering c) {
    restricted_moments_options o;
    o.basis = v;
    o.classes = 10;
    restricted_moments r(o);
    for (std::size_t r0 = 0; r0 < d.f.n; r0 += 300) {
        const std::size_t b = std::min<std::size_t>(300, d.f.n - r0);
        r.update(batch_view(d.f.row(r0), b, d.f.dim), target_view::class_ids(d.f.y.data() + r0, b), r0);
    }
    return r.finish(c);
}

matrix_t columns(const matrix_t& m, std::size_t k) { return xt::view(m, xt::all(), xt::range(0, k)); }

double max_abs_diff(const vector_t& a, const vector_t& b, std::size_t k) {
    double w = 0.0;
    for (std::size_t i = 0; i < k; ++i) w = std::max(w, std::abs(a(i) - b(i)));
    return w;
}

// The alignment of span(V_k) computed with the full statistics (MATH.md §2 through Sxx itself).
vector_t full_alignment(const statistics& clean, const matrix_t& v) {
    denoising_subspace_result s;
    s.basis = v;
    s.informative = v.shape(1);
    return denoising_alignment(clean, s).curve;
}
// The top 20 of an uncentered Frequent Directions sketch (ℓ = 24) of d, with its class
// statistics when `labels`.
statistics fd_top20(const data& d, bool labels) {
    frequent_directions_options fo;
    fo.dim = d.f.dim;
    fo.ell = 24;
    fo.center = centering::uncentered;
    frequent_directions fd(fo);
    class_moments classes({d.f.dim, 10});
    for (std::size_t r0 = 0; r0 < d.f.n; r0 += 250) {
        fd.update(batch_view(d.f.row(r0), 250, d.f.dim), r0);
        if (labels)
            classes.update(batch_view(d.f.row(r0), 250, d.f.dim), target_view::class_ids(d.f.y.data() + r0, 250), r0);
    }
    return finish(fd, labels ? &classes : nullptr, {20});
}

// Fashion-MNIST's first 2,000 rows, their exact statistics, FD's top 20 (no labels) and the
// verification pass on its basis: what the Ritz-pair tests share.
struct fd_verified {
    data d;
    statistics clean, sk;
    restricted_statistics pass;
};
fd_verified verify_fd_top20() {
    fd_verified v{prepare(2000), {}, {}, {}};
    v.clean = finish(v.d.acc, centering::uncentered);
    v.sk = fd_top20(v.d, false);
    v.pass = verify(v.d, v.sk.spec.basis, centering::uncentered);
    return v;
}

// y_jᵀ S y_j for every column of Y (D x m).
vector_t rayleigh_quotients(const matrix_t& s, const matrix_t& y) {
    const std::size_t dim = y.shape(0), m = y.shape(1);
    matrix_t sy = xt::zeros<double>({dim, m});
    blas::gemm_nn(dim, m, dim, 1.0, s.data(), y.data(), 0.0, sy.data());
    vector_t q = xt::zeros<double>({m});
    for (std::size_t j = 0; j < m; ++j)
        for (std::size_t i = 0; i < dim; ++i) q(j) += y(i, j) * sy(i, j);
    return q;
}

}  // namespace

TEST_CASE("basis_alignment of the exact eigenvectors is the exact curve", "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(1500);
    for (centering c : {centering::uncentered, centering::centered}) {
        const statistics clean = finish(d.acc, c);
        const std::size_t k = 60;
        const restricted_statistics r = verify(d, columns(clean.spec.basis, k), c);
        for (alignment_measure m : {alignment_measure::paper, alignment_measure::fit}) {
            alignment_options o;
            o.measure = m;
            const alignment_result b = basis_alignment(r, o), e = alignment_curve(clean, o);
            REQUIRE(b.max_k == k);
            CHECK(!b.complete);
            CHECK(b.normaliser == Approx(e.normaliser).epsilon(1e-12));
            CHECK(max_abs_diff(b.curve, e.curve, k) < 1e-10);
            for (std::size_t i = 0; i < 20; ++i) CHECK(b.eigenvalues(i) == Approx(e.eigenvalues(i)).epsilon(1e-10));
        }
    }
}

TEST_CASE("basis_alignment of a sketch's subspace: exact for that subspace, whatever its eigenvalues",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    const statistics clean = finish(d.acc, centering::uncentered);
    const statistics sk = fd_top20(d, true);
    const std::size_t k = sk.spec.rank();
    REQUIRE(k == 20);
    const alignment_result verified = basis_alignment(verify(d, sk.spec.basis, centering::uncentered));
    const vector_t want = full_alignment(clean, sk.spec.basis);
    CHECK(max_abs_diff(verified.curve, want, k) < 1e-10);
    // The curve read off the sketch's own (biased low) eigenvalues is not that number: it is
    // what the verification pass exists to replace.
    const alignment_result from_eigenvalues = alignment_curve(sk, alignment_options{});
    CHECK(max_abs_diff(from_eigenvalues.curve, verified.curve, k) > 1e-4);
    // Rayleigh quotients are exact: never below the sketch's eigenvalue (FD underestimates).
    for (std::size_t i = 0; i < k; ++i) CHECK(verified.eigenvalues(i) >= sk.spec.eigenvalues(i) * (1 - 1e-12));
}

TEST_CASE("ritz_pairs: ritz_alignment's Ritz values and residuals without labels, below the true eigenvalues",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const fd_verified v = verify_fd_top20();
    const data& d = v.d;
    const statistics &clean = v.clean, &sk = v.sk;
    const restricted_statistics& pass = v.pass;
    const ritz_pairs_result p = ritz_pairs(pass);
    const ritz_alignment_result a = ritz_alignment(pass);
    REQUIRE(p.values.size() == 20);
    CHECK(max_abs_diff(p.values, a.curve.eigenvalues, 20) <= 1e-12 * p.values(0));  // its Rayleigh quotients
    CHECK(same_bits(p.residuals, a.residuals));
    // θ_j = y_jᵀ Sxx y_j for Y = V W, at most λ_j (Cauchy), some λ within the residual.
    const std::size_t dim = d.f.dim, k = sk.spec.rank();
    matrix_t y = xt::zeros<double>({dim, std::size_t(20)});
    blas::gemm_nn(dim, 20, k, 1.0, sk.spec.basis.data(), p.vectors.data(), 0.0, y.data());
    const vector_t quotient = rayleigh_quotients(clean.second_moment.value(), y);
    for (std::size_t j = 0; j < 20; ++j) {
        CHECK(std::abs(quotient(j) - p.values(j)) <= 1e-9 * p.values(0));
        CHECK(p.values(j) <= clean.spec.eigenvalues(j) * (1 + 1e-12));
        CHECK(xt::amin(xt::abs(clean.spec.eigenvalues - p.values(j)))() <= p.residuals(j) + 1e-9 * p.values(0));
    }
}

TEST_CASE("ritz_spectrum: the sketch's spectrum with its Ritz pairs, which the projector reads as exact",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const fd_verified v = verify_fd_top20();
    const data& d = v.d;
    const statistics &clean = v.clean, &sk = v.sk;
    const restricted_statistics& pass = v.pass;
    const ritz_pairs_result p = ritz_pairs(pass);
    const ritz_spectrum_result r = ritz_spectrum(sk.spec, pass);
    const spectrum& s = r.spec;
    CHECK(s.ritz);
    CHECK(s.values_exact());
    CHECK_FALSE(sk.spec.values_exact());
    CHECK(s.method == route::frequent_directions);
    CHECK(s.n == sk.spec.n);
    CHECK(s.total == sk.spec.total);
    CHECK(same_bits(s.eigenvalues, p.values));  // no value of Vᵀ Sxx V is negative here: nothing clipped
    CHECK(s.clipped == 0);
    CHECK(same_bits(r.residuals, p.residuals));
    CHECK(std::isnan(s.error_estimate));
    CHECK(s.error_bound == sk.spec.error_bound);
    const std::size_t dim = d.f.dim, m = s.rank();
    REQUIRE(m == 20);
    REQUIRE(s.basis.shape(0) == dim);
    REQUIRE(s.basis.shape(1) == m);
    // Y = V W: orthonormal, and θ_j = y_jᵀ Sxx y_j, at most λ_j.
    const vector_t quotient = rayleigh_quotients(clean.second_moment.value(), s.basis);
    double acc = 0.0;
    for (std::size_t j = 0; j < m; ++j) {
        CHECK(std::abs(quotient(j) - s.eigenvalues(j)) <= 1e-9 * s.eigenvalues(0));
        CHECK(s.eigenvalues(j) <= clean.spec.eigenvalues(j) * (1 + 1e-12));
        for (std::size_t l = 0; l < m; ++l) {
            double dot = 0.0;
            for (std::size_t i = 0; i < dim; ++i) dot += s.basis(i, j) * s.basis(i, l);
            CHECK(std::abs(dot - (j == l ? 1.0 : 0.0)) <= 1e-10);
        }
        acc += s.eigenvalues(j);
        CHECK(std::abs(s.explained(j) - acc / s.total) <= 1e-14);
    }
    // Without the basis: the same values.
    const ritz_spectrum_result values_only = ritz_spectrum(sk.spec, pass, false);
    CHECK(values_only.spec.basis.size() == 0);
    CHECK(same_bits(values_only.spec.eigenvalues, s.eigenvalues));
    // The projector chooses k from the exact values, and says so when they fall short.
    projector_options o;
    o.fraction = 0.5 * s.explained(m - 1);
    const subspace_projector top = subspace_projector::from_spectrum(s, vector_t(), o);
    CHECK(top.k == k_for_fraction(s.eigenvalues, s.total, o.fraction));
    CHECK(top.explained >= o.fraction);
    o.fraction = std::min(1.0, s.explained(m - 1) + 0.01);
    const auto message = [&](const spectrum& sp) {
        try {
            (void)subspace_projector::from_spectrum(sp, vector_t(), o);
        } catch (const std::invalid_argument& e) {
            return std::string(e.what());
        }
        return std::string("no error");
    };
    const std::string exact = message(s), estimated = message(sk.spec);
    CHECK_THAT(exact, Catch::Contains("fd sketch returned 20 directions") && Catch::Contains("exact for them") &&
                          !Catch::Contains("estimated"));
    CHECK_THAT(estimated, Catch::Contains("an estimated") && !Catch::Contains("exact for them"));
    // A pass over other rows (another n) or in another centering is not this sketch's.
    const restricted_statistics centered = verify(d, sk.spec.basis, centering::centered);
    CHECK_THROWS_WITH(ritz_spectrum(sk.spec, centered), Catch::Contains("not of the sketch's rows"));
    spectrum other = sk.spec;
    other.n += 1;
    CHECK_THROWS_WITH(ritz_spectrum(other, pass), Catch::Contains("n = 2000"));
}

TEST_CASE("ritz_denoising on span V: exact restricted problem, exact numbers for the result", "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    const statistics clean = finish(d.acc, centering::uncentered);
    const noise_spec mask = parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=fixed");
    const noise_moments nm = closed_form_noise(mask, *clean.second_moment, clean.n, d.blocks.options().shape);
    const denoising_result exact = denoising_alignment(clean, nm);
    const std::size_t k = 40;
    // span V = span of the exact V*_1..K: Ritz recovers V* itself, and its numbers.
    const ritz_denoising_result on_exact =
        ritz_denoising(verify(d, columns(exact.subspace.basis, k), centering::uncentered), mask, &d.blocks);
    REQUIRE(on_exact.subspace.informative == k);
    for (std::size_t i = 0; i < k; ++i)
        CHECK(on_exact.subspace.eigenvalues(i) == Approx(exact.subspace.eigenvalues(i)).epsilon(1e-8));
    CHECK(max_abs_diff(basis_alignment(on_exact.refined).curve, exact.curve, k) < 1e-9);
    // From a truncated sketch: whatever span V is, the numbers reported for V W are exact.
    spectrum top = clean.spec;
    top.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, 64));
    top.basis = columns(clean.spec.basis, 64);
    const denoising_subspace_result sketched = sketched_denoising_subspace(top, mask, &d.blocks);
    const ritz_denoising_result refined =
        ritz_denoising(verify(d, columns(sketched.basis, k), centering::uncentered), mask, &d.blocks);
    CHECK(max_abs_diff(basis_alignment(refined.refined).curve, full_alignment(clean, refined.subspace.basis), k) < 1e-9);
    // Gaussian noise on the exact top eigenvectors: μ_i = λ_i² / (λ_i + nσ²), no blocks needed.
    const noise_spec gauss = parse_noise_spec("gaussian:sigma=0.2");
    const ritz_denoising_result g = ritz_denoising(verify(d, columns(clean.spec.basis, 30), centering::uncentered), gauss, nullptr);
    const double shift = static_cast<double>(clean.n) * 0.04;
    for (std::size_t i = 0; i < 30; ++i) {
        const double lam = clean.spec.eigenvalues(i);
        CHECK(g.subspace.eigenvalues(i) == Approx(lam * lam / (lam + shift)).epsilon(1e-9));
    }
    CHECK_THROWS_WITH(ritz_denoising(on_exact.refined, mask, nullptr), Catch::Contains("patch blocks"));
}

namespace {
// Both losses of an encoder V (D x K) from the full statistics (MATH.md §3, through Sxx itself).
std::pair<double, double> full_losses(const statistics& clean, const matrix_t& v) {
    const matrix_t& sxx = *clean.second_moment;
    const std::size_t d = v.shape(0), k = v.shape(1), c = clean.classes();
    matrix_t sv = xt::zeros<double>({d, k}), m = xt::zeros<double>({k, k}), vy = xt::zeros<double>({k, c});
    blas::gemm_nn(d, k, d, 1.0, sxx.data(), v.data(), 0.0, sv.data());
    blas::gemm_tn(k, k, d, 1.0, v.data(), sv.data(), 0.0, m.data());
    blas::gemm_tn(k, c, d, 1.0, v.data(), clean.cross->sxy.data(), 0.0, vy.data());
    // M⁻¹ = P D⁻¹ Pᵀ: fit = ‖D^{-1/2} Pᵀ Vᵀ Sxy‖² and ‖Sxx V P D^{-1/2}‖².
    const eigen_result e = sym_eigen(m);
    matrix_t wy = xt::zeros<double>({k, c}), wx = xt::zeros<double>({d, k});
    blas::gemm_tn(k, c, k, 1.0, e.vectors.data(), vy.data(), 0.0, wy.data());
    blas::gemm_nn(d, k, k, 1.0, sv.data(), e.vectors.data(), 0.0, wx.data());
    double fit_y = 0.0, fit_x = 0.0;
    for (std::size_t j = 0; j < k; ++j) {
        for (std::size_t i = 0; i < c; ++i) fit_y += wy(j, i) * wy(j, i) / e.values(j);
        for (std::size_t i = 0; i < d; ++i) fit_x += wx(i, j) * wx(i, j) / e.values(j);
    }
    return {clean.cross->syy_trace() - fit_y, clean.spec.total - fit_x};
}
}  // namespace

TEST_CASE("ritz_tradeoff: exact on a complete basis, an upper bound within 1% from a sketch's Ritz space",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    for (centering c : {centering::uncentered, centering::centered}) {
        const statistics clean = finish(d.acc, c);
        tradeoff_options o;
        o.lambdas = {0.0, 1.0, 10.0};
        // Complete basis: Rayleigh–Ritz is the closed form.
        o.k = 30;
        const tradeoff_result exact = tradeoff(clean, o);
        const matrix_t eye = xt::eye<double>(d.f.dim);
        const tradeoff_result full = ritz_tradeoff(verify(d, eye, c), clean.spec.total, o);
        for (std::size_t i = 0; i < 3; ++i) {
            CHECK(full.points[i].supervised_loss == Approx(exact.points[i].supervised_loss).epsilon(1e-9));
            // At λ = 0 only the first C columns are determined: the reconstruction is not.
            if (i > 0) CHECK(full.points[i].reconstruction_loss == Approx(exact.points[i].reconstruction_loss).epsilon(1e-9));
        }
        // A sketch's top 48 eigenvectors (here the exact ones) and Sxy, then Sxx Sxy too.
        statistics sketch = clean;
        sketch.spec.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, 48));
        sketch.spec.basis = columns(clean.spec.basis, 48);
        sketch.second_moment.reset();
        const matrix_t q1 = tradeoff_ritz_basis(sketch);
        CHECK(q1.shape(1) == 48 + 10 - (c == centering::centered ? 1 : 0));  // centered Sxy: columns sum to 0
        const restricted_statistics pass1 = verify(d, q1, c);
        const matrix_t q2 = tradeoff_ritz_basis(sketch, &pass1);
        CHECK(q2.shape(1) > q1.shape(1));
        const restricted_statistics pass2 = verify(d, q2, c);
        for (std::size_t k : {5, 20, 40}) {
            o.k = k;
            const tradeoff_result best = tradeoff(clean, o), r1 = ritz_tradeoff(pass1, clean.spec.total, o),
                                  r2 = ritz_tradeoff(pass2, clean.spec.total, o);
            for (std::size_t i = 0; i < 3; ++i) {
                const tradeoff_point &b = best.points[i], &p1 = r1.points[i], &p2 = r2.points[i];
                // The losses printed are those of the V returned, exactly.
                const auto [sup, rec] = full_losses(clean, p2.v);
                CHECK(p2.supervised_loss == Approx(sup).epsilon(1e-9));
                CHECK(p2.reconstruction_loss == Approx(rec).epsilon(1e-9));
                // Feasible: never below the optimum; a richer space never worse.
                CHECK(p1.loss >= b.loss * (1 - 1e-10));
                CHECK(p2.loss <= p1.loss * (1 + 1e-10));
                CHECK(p2.loss >= b.loss * (1 - 1e-10));
                // Measured (48 of 196 eigenvectors): λ = 1, 10 within 0.23 %; λ = 0 (the supervised
                // optimum Sxx⁻¹ Sxy lives in the low-variance tail) 2.6 % after the second pass.
                CHECK(p2.loss <= b.loss * (b.lambda > 0 ? 1.01 : 1.05));
            }
        }
    }
    const restricted_statistics other = verify(d, xt::eye<double>(d.f.dim), centering::centered);
    CHECK_THROWS_WITH(tradeoff_ritz_basis(finish(d.acc, centering::centered), &other),
                      Catch::Contains("not a verification pass"));
}

namespace {
patch_blocks runs(const data& d, std::size_t s) {  // diagonal blocks of s consecutive coordinates
    patch_blocks_options o;
    o.shape = {d.f.dim, 1, 1, image_layout::hwc};
    o.patch_h = s;
    patch_blocks b(o);
    b.update(batch_view(d.f.row(0), d.f.n, d.f.dim));
    return b;
}
}  // namespace

TEST_CASE("tradeoff_ritz_basis with blocks: preconditioned CG passes towards Sxx⁻¹ Sxy, against the exact route",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    for (centering c : {centering::uncentered, centering::centered}) {
        const statistics clean = finish(d.acc, c);
        statistics sketch = clean;
        sketch.spec.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, 24));
        sketch.spec.basis = columns(clean.spec.basis, 24);
        sketch.second_moment.reset();
        tradeoff_options o;
        o.lambdas = {0.0, 1.0, 10.0};
        o.k = 20;
        const tradeoff_result best = tradeoff(clean, o);
        // Blocks of one coordinate: the diagonal preconditioner, the same numbers.
        const patch_blocks ones = runs(d, 1);
        vector_t diag = xt::zeros<double>({d.f.dim});
        for (std::size_t b = 0; b < ones.blocks(); ++b) diag(ones.indices(b)[0]) = ones.block(b, c)(0, 0);
        const matrix_t sxy = sketch.targets("test").sxy;
        const matrix_t g1 = sketch_preconditioned(sketch.spec, ones, sxy), g2 = sketch_preconditioned(sketch.spec, diag, sxy);
        CHECK(xt::amax(xt::abs(g1 - g2))() <= 1e-10 * xt::amax(xt::abs(g2))());
        // One block of all D coordinates: Ĝ = Sxx, so one step lands on Sxx⁻¹ Sxy and the second
        // pass's λ = 0 loss is the optimum.
        {
            const patch_blocks all = runs(d, d.f.dim);
            const restricted_statistics pass1 = verify(d, tradeoff_ritz_basis(sketch, nullptr, all), c);
            const restricted_statistics pass2 = verify(d, tradeoff_ritz_basis(sketch, &pass1, all), c);
            const tradeoff_residual res = tradeoff_galerkin_residual(sketch, pass2);
            CHECK(res.relative < 1e-8);
            CHECK(res.supervised_loss == Approx(best.points[0].supervised_loss).epsilon(1e-8));
            // With Ĝ = Sxx, tradeoff_excess_estimate's tr(Rᵀ Ĝ⁻¹ R) is the exact excess: on span(U, Sxy)
            // (no preconditioned direction), the λ = 0 loss over the optimum, relative to that loss.
            const restricted_statistics plain = verify(d, tradeoff_ritz_basis(sketch), c);
            const tradeoff_residual r0 = tradeoff_galerkin_residual(sketch, plain);
            const tradeoff_excess e0 = tradeoff_excess_estimate(sketch, all, plain);
            CHECK(e0.residual == r0.relative);
            const double exact = (r0.supervised_loss - best.points[0].supervised_loss) / r0.supervised_loss;
            CHECK(exact > 1e-3);
            CHECK(e0.estimate == Approx(exact).epsilon(1e-6));
        }
        // Blocks of 14 (an image row): the λ = 0 loss falls pass by pass, the residual is that of
        // the loss printed, and every loss is an upper bound.
        const patch_blocks rows = runs(d, 14);
        restricted_statistics pass = verify(d, tradeoff_ritz_basis(sketch, nullptr, rows), c);
        double last = std::numeric_limits<double>::infinity();
        std::vector<double> excess;
        for (int step = 0; step < 6; ++step) {
            const tradeoff_result r = ritz_tradeoff(pass, clean.spec.total, o);
            const tradeoff_residual res = tradeoff_galerkin_residual(sketch, pass);
            CHECK(res.supervised_loss == Approx(r.points[0].supervised_loss).epsilon(1e-9));  // K = 20 >= C
            for (std::size_t i = 0; i < 3; ++i) CHECK(r.points[i].loss >= best.points[i].loss * (1 - 1e-10));
            CHECK(r.points[0].loss <= last * (1 + 1e-10));
            last = r.points[0].loss;
            excess.push_back(r.points[0].loss / best.points[0].loss - 1);
            if (step == 5) {
                // Measured (24 of 196 eigenvectors): the λ = 0 excess 8.5e-2 – 8.8e-2 after the
                // first pass, 6.4e-4 (uncentered) and 8.2e-4 (centered) after the sixth.
                CHECK(excess.back() < 1e-2);
                CHECK(excess.back() < 0.1 * excess.front());
                for (std::size_t i = 1; i < 3; ++i) CHECK(r.points[i].loss <= best.points[i].loss * 1.01);
            }
            pass = verify(d, tradeoff_ritz_basis(sketch, &pass, rows), c);
        }
    }
}

TEST_CASE("verified_denoising from a sketch's top eigenvectors: exact numbers for the returned subspaces",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    const statistics clean = finish(d.acc, centering::uncentered);
    const std::size_t r = 64;  // the exact top 64 of 196 as the sketch
    std::mt19937_64 rng(7);
    spectrum top = clean.spec;
    top.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, r));
    top.basis = columns(clean.spec.basis, r);
    for (const char* text : {"mask:patch=2x2,ratio=0.25", "mask:patch=2x2,ratio=0.75,scheme=fixed", "dropout:ratio=0.5"}) {
        INFO(text);
        const noise_spec noise = parse_noise_spec(text);
        patch_blocks_options po = d.blocks.options();
        const patch_blocks* blocks = &d.blocks;
        std::optional<patch_blocks> pixels;
        if (noise.family == noise_family::dropout) {  // 1x1 patches
            po.patch_h = po.patch_w = 1;
            pixels.emplace(po);
            pixels->update(batch_view(d.f.row(0), d.f.n, d.f.dim));
            blocks = &*pixels;
        }
        const denoising_subspace_result v = sketched_denoising_subspace(top, noise, blocks);
        // The verification pass on span(U, V): both analyses read it.
        const restricted_statistics pass = verify(d, orthonormal_extension(top.basis, v.basis), centering::uncentered);
        CHECK(pass.k() > r);
        const ritz_alignment_result u = ritz_alignment(pass);
        const verified_denoising_result got = verified_denoising(u, pass, noise, blocks);
        {
            // know_blocks: Vᵀ Bd V swept once per set of blocks (nulls skipped), then read by
            // every analysis of a noise on those blocks: the same bits as sweeping for each.
            restricted_statistics known = pass;
            know_blocks(known, {blocks, nullptr, blocks});
            REQUIRE(known.blocks_known.size() == 1);
            CHECK(known.blocks_known[0].is_of(*blocks));
            const matrix_t swept = restricted_blocks(pass, *blocks);
            CHECK(same_bits(known.blocks_known[0].leading, swept));
            const verified_denoising_result again = verified_denoising(u, known, noise, blocks);
            CHECK(same_bits(again.denoising.curve, got.denoising.curve));
            CHECK(same_bits(again.denoising.relative_difference, got.denoising.relative_difference));
            CHECK(same_bits(again.impact.normalised, got.impact.normalised));
        }
        const std::size_t k = got.denoising.max_k;
        REQUIRE(k >= r);
        // Exact for what is returned: the curves and the impact recomputed from Sxx itself.
        CHECK(max_abs_diff(got.denoising.clean_curve, full_alignment(clean, u.refined.basis), k) < 1e-9);
        const vector_t want = full_alignment(clean, got.denoising.subspace.basis);
        CHECK(max_abs_diff(got.denoising.curve, want, k) < 1e-9);
        // Against the exact route (measured: relative differences within 1.6e-3, 4.3e-3, 1.6e-3;
        // normalised impact within 0.05, 0.08, 0.11 for K <= 64 with 64 of 196 eigenvectors).
        const noise_moments nm = closed_form_noise(noise, *clean.second_moment, clean.n, po.shape);
        const denoising_result exact = denoising_alignment(clean, nm);
        const noise_impact_result ei = noise_impact(clean, nm);
        // Largest |error| for K <= 64 of the relative difference and the normalised impact.
        auto errors = [&](const verified_denoising_result& v) {
            double rel = 0.0, imp = 0.0;
            for (std::size_t j = 0; j < r; ++j) {
                rel = std::max(rel, std::abs(exact.relative_difference(j) - v.denoising.relative_difference(j)));
                imp = std::max(imp, std::abs(ei.normalised(j) - v.impact.normalised(j)));
            }
            return std::make_pair(rel, imp);
        };
        const auto [rel, imp] = errors(got);
        CHECK(rel < 5e-3);
        CHECK(imp < 0.15);
        // Refinement passes (the CLI runs one): the preconditioned residuals of the first 32,
        // then 16, Ritz vectors; spaces of 160 and 176 of 196 dimensions. Measured: relative
        // differences within 4.5e-4, 2.6e-3, 5.3e-4 then 2.5e-4, 8.0e-4, 2.6e-4; impacts within
        // 1.0e-2, 4.4e-3, 1.5e-3 then 3.2e-3, 2.1e-3, 5.8e-4. The same number of random
        // directions instead of the first step: impacts within 3.8e-2 to 1.0e-1 (the gain is the
        // method's; from the refined span, random directions are not much worse).
        restricted_statistics step = pass;
        for (std::size_t count : {32, 16}) {
            const matrix_t t = denoising_refinement(top, step, noise, blocks, count);
            REQUIRE(t.shape(1) == count);
            const matrix_t random = xt::random::randn<double>(t.shape(), 0.0, 1.0, rng);
            const restricted_statistics control = verify(d, orthonormal_extension(step.basis, random), centering::uncentered);
            step = verify(d, orthonormal_extension(step.basis, t), centering::uncentered);
            REQUIRE(step.k() == control.k());
            const verified_denoising_result refined = verified_denoising(ritz_alignment(step), step, noise, blocks);
            const auto [rel2, imp2] = errors(refined);
            const auto [rel_c, imp_c] = errors(verified_denoising(ritz_alignment(control), control, noise, blocks));
            CHECK(max_abs_diff(refined.denoising.curve, full_alignment(clean, refined.denoising.subspace.basis), r) < 1e-9);
            if (count == 32) CHECK(imp2 < imp_c / 3);  // from the first pass's span
            CHECK(imp2 < (count == 32 ? 1.5e-2 : 5e-3));
            CHECK(rel2 < (count == 32 ? 3e-3 : 1e-3));
        }
    }
    // Gaussian noise leaves the sketch's subspace unchanged: no new direction, impact 0.
    const noise_spec gauss = parse_noise_spec("gaussian:sigma=0.3");
    const matrix_t q = orthonormal_extension(top.basis, sketched_denoising_subspace(top, gauss, nullptr).basis);
    CHECK(q.shape(1) == r);
    const restricted_statistics pass = verify(d, q, centering::uncentered);
    const verified_denoising_result g = verified_denoising(ritz_alignment(pass), pass, gauss, nullptr);
    CHECK(xt::amax(g.impact.distance)() < 1e-10);
}

TEST_CASE("Ritz steps in the pass's coordinates: the same exact numbers without rotated D x K copies",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    const statistics clean = finish(d.acc, centering::uncentered);
    const std::size_t r = 48;
    spectrum top = clean.spec;
    top.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, r));
    top.basis = columns(clean.spec.basis, r);
    for (const char* text : {"mask:patch=2x2,ratio=0.75,scheme=fixed", "gaussian:sigma=0.2"}) {
        INFO(text);
        const noise_spec noise = parse_noise_spec(text);
        const patch_blocks* blocks = noise.family == noise_family::gaussian ? nullptr : &d.blocks;
        const denoising_subspace_result v = sketched_denoising_subspace(top, noise, blocks);
        const restricted_statistics pass = verify(d, orthonormal_extension(top.basis, v.basis), centering::uncentered);
        restricted_statistics frame = pass;
        frame.products();
        {  // Vᵀ V and (Sxx V)ᵀ(Sxx V) by SYRK (docs/benchmarks-log.md "time9"): the GEMM's values, exactly symmetric
            const std::size_t m = pass.k(), dd = pass.dim();
            matrix_t g = xt::zeros<double>({m, m}), s2 = xt::zeros<double>({m, m});
            blas::gemm_tn(m, m, dd, 1.0, pass.basis.data(), pass.basis.data(), 0.0, g.data());
            blas::gemm_tn(m, m, dd, 1.0, pass.sv.data(), pass.sv.data(), 0.0, s2.data());
            CHECK(testing::rel_diff(frame.gram, g) < 1e-13);
            CHECK(testing::rel_diff(frame.svsv, s2) < 1e-13);
            bool symmetric = true;
            for (std::size_t i = 0; i < m; ++i)
                for (std::size_t j = 0; j < m; ++j)
                    symmetric = symmetric && frame.gram(i, j) == frame.gram(j, i) && frame.svsv(i, j) == frame.svsv(j, i);
            CHECK(symmetric);
        }
        const ritz_alignment_result u = ritz_alignment(pass), uc = ritz_alignment(frame);
        REQUIRE(uc.refined.in_coordinates());
        CHECK(uc.refined.basis.size() == 0);
        CHECK(uc.refined.dim() == pass.dim());
        const std::size_t k = u.curve.curve.size();
        REQUIRE(uc.curve.curve.size() == k);
        CHECK(max_abs_diff(u.curve.curve, uc.curve.curve, k) < 1e-12);
        CHECK(max_abs_diff(u.curve.eigenvalues, uc.curve.eigenvalues, k) < 1e-10 * u.curve.eigenvalues(0));
        CHECK(max_abs_diff(u.residuals, uc.residuals, k) < 1e-10 * u.curve.eigenvalues(0));
        const verified_denoising_result a = verified_denoising(u, pass, noise, blocks);
        const verified_denoising_result b = verified_denoising(uc, frame, noise, blocks);
        const std::size_t kd = a.denoising.max_k;
        REQUIRE(b.denoising.max_k == kd);
        CHECK(max_abs_diff(a.denoising.curve, b.denoising.curve, kd) < 1e-12);
        CHECK(max_abs_diff(a.denoising.relative_difference, b.denoising.relative_difference, kd) < 1e-11);
        CHECK(max_abs_diff(a.impact.distance, b.impact.distance, kd) < 1e-10);
        // Exact for what is returned: the columns formed from the pass, against Sxx itself.
        if (!blocks) continue;
        const ritz_denoising_result rc = ritz_denoising(frame, noise, blocks);
        const matrix_t vk = leading_columns(rc.refined, frame, kd);
        CHECK(max_abs_diff(b.denoising.curve, full_alignment(clean, vk), kd) < 1e-9);
        // The refinement step reads the same columns either way.
        const matrix_t t1 = denoising_refinement(top, pass, noise, blocks, 16);
        const matrix_t t2 = denoising_refinement(top, frame, noise, blocks, 16);
        REQUIRE(t1.shape(1) == t2.shape(1));
        CHECK(xt::amax(xt::abs(t1 - t2))() < 1e-8);
        // A restart's masks share the pass's factors (refinement_factors_of, formed once): the
        // same bits as each call forming its own.
        const refinement_factors f = refinement_factors_of(frame);
        CHECK(same_bits(denoising_refinement(top, frame, noise, blocks, 16, rc, f), t2));
        CHECK(same_bits(denoising_refinement(top, frame, noise, blocks, 16, rc), t2));
        // Factors of another pass (here the sketch's basis alone, m = r) or of statistics in
        // coordinates are refused.
        const restricted_statistics other = verify(d, top.basis, centering::uncentered);
        CHECK_THROWS_WITH(denoising_refinement(top, frame, noise, blocks, 16, rc, refinement_factors_of(other)),
                          Catch::Contains("not of this pass"));
        CHECK_THROWS_AS(refinement_factors_of(uc.refined), std::invalid_argument);
    }
}

TEST_CASE("refinement_residuals: the masks of one geometry side by side, each as its own refinement step",
          "[align][verification]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(2000);
    const statistics clean = finish(d.acc, centering::uncentered);
    const std::size_t r = 48, count = 16;
    spectrum top = clean.spec;
    top.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, r));
    top.basis = columns(clean.spec.basis, r);
    // Three masks of one geometry (2x2 patches), different coefficients: a column given another
    // noise's coefficients, Ritz values or place would differ from that noise's own step.
    const std::vector<noise_spec> masks{parse_noise_spec("mask:patch=2x2,ratio=0.75,scheme=fixed"),
                                        parse_noise_spec("mask:patch=2x2,ratio=0.75"),
                                        parse_noise_spec("mask:patch=2x2,ratio=0.5")};
    matrix_t q = top.basis;
    for (const noise_spec& n : masks) q = orthonormal_extension(q, sketched_denoising_subspace(top, n, &d.blocks).basis);
    const restricted_statistics pass = verify(d, q, centering::uncentered);
    restricted_statistics frame = pass;
    frame.products();
    const restricted_statistics& framed = frame;
    for (const restricted_statistics* s : {&pass, &framed}) {  // the Ritz steps rotated, or in coordinates
        INFO((s == &framed ? "in the pass's coordinates" : "rotated"));
        const refinement_factors f = refinement_factors_of(*s);
        std::vector<ritz_denoising_result> ritz;
        for (const noise_spec& n : masks) ritz.push_back(ritz_denoising(*s, n, &d.blocks));
        const std::vector<matrix_t> res =
            refinement_residuals(*s, masks, d.blocks, count, {&ritz[0], &ritz[1], &ritz[2]}, f);
        REQUIRE(res.size() == masks.size());
        for (std::size_t i = 0; i < masks.size(); ++i) {
            INFO(to_string(masks[i]));
            REQUIRE(res[i].shape(0) == d.f.dim);
            REQUIRE(res[i].shape(1) == std::min(count, ritz[i].subspace.informative));
            const matrix_t alone = denoising_refinement(top, *s, masks[i], &d.blocks, count, ritz[i], f);
            const matrix_t joint = refinement_direction(top, *s, masks[i], d.blocks, res[i]);
            REQUIRE(joint.shape(1) == alone.shape(1));
            CHECK(xt::amax(xt::abs(joint - alone))() < 1e-13);  // unit columns
            // One noise alone through the same two parts: its own step.
            const std::vector<matrix_t> one = refinement_residuals(*s, {masks[i]}, d.blocks, count, {&ritz[i]}, f);
            CHECK(xt::amax(xt::abs(one[0] - res[i]))() <= 1e-13 * xt::amax(xt::abs(res[i]))());
        }
        // The noises' residuals differ (the check above would not see coefficients swapped otherwise).
        CHECK(xt::amax(xt::abs(res[0] - res[1]))() > 1e-6 * xt::amax(xt::abs(res[0]))());
        // Refused: a noise without residuals here, a missing Ritz step, one step for two noises,
        // blocks of another dimension.
        CHECK_THROWS_AS(refinement_residuals(*s, {parse_noise_spec("gaussian:sigma=0.1")}, d.blocks, count, {&ritz[0]}, f),
                        std::invalid_argument);
        CHECK_THROWS_AS(refinement_residuals(*s, {masks[0]}, d.blocks, count, {nullptr}, f), std::invalid_argument);
        CHECK_THROWS_AS(refinement_residuals(*s, {masks[0], masks[1]}, d.blocks, count, {&ritz[0]}, f),
                        std::invalid_argument);
        patch_blocks_options po;
        po.shape = {7, 7, 1, image_layout::hwc};
        po.patch_h = po.patch_w = 1;
        const patch_blocks small(po);
        CHECK_THROWS_WITH(refinement_residuals(*s, {parse_noise_spec("dropout:ratio=0.5")}, small, count, {&ritz[0]}, f),
                          Catch::Contains("dimension"));
        CHECK_THROWS_WITH(refinement_direction(top, *s, masks[0], d.blocks, xt::zeros<double>({std::size_t(5), count})),
                          Catch::Contains("dimension"));
        if (s == &framed)  // statistics in a pass's coordinates are no pass to form residuals on
            CHECK_THROWS_WITH(refinement_residuals(ritz[0].refined, {masks[0]}, d.blocks, count, {&ritz[0]}, f),
                              Catch::Contains("coordinates"));
    }
}

namespace {
// An orthonormal basis of the first k columns of x through the eigendecomposition of their Gram
// matrix (X P D^{-1/2}): another route than basis_impact's nested Cholesky.
matrix_t eigen_orthonormal(const matrix_t& x, std::size_t k) {
    const std::size_t d = x.shape(0);
    const matrix_t xk = xt::view(x, xt::all(), xt::range(0, k));
    matrix_t g = xt::zeros<double>({k, k});
    blas::gemm_tn(k, k, d, 1.0, xk.data(), xk.data(), 0.0, g.data());
    const eigen_result e = sym_eigen(g);
    matrix_t p = e.vectors;
    for (std::size_t j = 0; j < k; ++j)
        for (std::size_t i = 0; i < k; ++i) p(i, j) /= std::sqrt(e.values(j));
    matrix_t q = xt::zeros<double>({d, k});
    blas::gemm_nn(d, k, k, 1.0, xk.data(), p.data(), 0.0, q.data());
    return q;
}
}  // namespace

TEST_CASE("basis_impact from Gram matrices: K - ||Q_U^T Q_V||^2 of the leading columns, max_k, extension",
          "[align][verification]") {
    const std::size_t d = 40;
    const std::vector<double> a = testing::random_rows(d, 6, 21, 0.0), b = testing::random_rows(d, 5, 22, 0.0);
    matrix_t u = xt::zeros<double>({d, std::size_t(6)}), v = xt::zeros<double>({d, std::size_t(5)});
    for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t j = 0; j < 6; ++j) u(i, j) = a[i * 6 + j] * (1.0 + 3.0 * static_cast<double>(j));  // unequal norms
        for (std::size_t j = 0; j < 5; ++j) v(i, j) = b[i * 5 + j] + 0.5 * u(i, j);  // partly shared span
    }
    for (const std::size_t max_k : {std::size_t(5), std::size_t(3)}) {
        const noise_impact_result r = basis_impact(u, v, 1e-12, max_k);
        REQUIRE(r.max_k == max_k);
        for (std::size_t k = 1; k <= max_k; ++k) {
            const matrix_t qu = eigen_orthonormal(u, k), qv = eigen_orthonormal(v, k);
            matrix_t c = xt::zeros<double>({k, k});
            blas::gemm_tn(k, k, d, 1.0, qu.data(), qv.data(), 0.0, c.data());
            double inside = 0.0;
            for (double x : c) inside += x * x;
            CHECK(std::abs(r.distance(k - 1) - (static_cast<double>(k) - inside)) < 1e-12);
        }
    }
    // orthonormal_extension: Q's columns first, then an orthonormal basis of what `extra` adds;
    // a dependent column (a copy of one of Q's, a sum of two extras) adds nothing.
    const matrix_t q = eigen_orthonormal(u, 4);
    matrix_t extra = xt::zeros<double>({d, std::size_t(5)});
    for (std::size_t i = 0; i < d; ++i) {
        for (std::size_t j = 0; j < 3; ++j) extra(i, j) = v(i, j);
        extra(i, 3) = q(i, 1);
        extra(i, 4) = v(i, 0) + v(i, 2);
    }
    for (const bool dependent : {false, true}) {
        const matrix_t e = dependent ? extra : matrix_t(xt::view(extra, xt::all(), xt::range(0, 3)));
        const matrix_t out = orthonormal_extension(q, e);
        REQUIRE(out.shape(1) == 7);
        matrix_t g = xt::zeros<double>({std::size_t(7), std::size_t(7)});
        blas::gemm_tn(7, 7, d, 1.0, out.data(), out.data(), 0.0, g.data());
        CHECK(testing::rel_diff(g, xt::eye<double>(7)) < 1e-13);
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < 4; ++j) CHECK(out(i, j) == q(i, j));
        // Every extra column lies in span(out): its residual after projection vanishes.
        matrix_t c = xt::zeros<double>({std::size_t(7), e.shape(1)});
        blas::gemm_tn(7, e.shape(1), d, 1.0, out.data(), e.data(), 0.0, c.data());
        matrix_t res = e;
        blas::gemm_nn(d, e.shape(1), 7, -1.0, out.data(), c.data(), 1.0, res.data());
        CHECK(xt::amax(xt::abs(res))() < 1e-12 * xt::amax(xt::abs(e))());
        // In place (a basis built in one D x cap matrix): the same columns in Q's own storage,
        // bit for bit (the same products on a strided Q), the unused columns untouched; a
        // dependent extra leaves the count short of cap; one column too many is refused.
        const std::size_t cap = 4 + e.shape(1) + 1;
        matrix_t wide = xt::zeros<double>({d, cap});
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < 4; ++j) wide(i, j) = q(i, j);
        const std::size_t used = orthonormal_extension(wide, 4, e);
        REQUIRE(used == 7);
        for (std::size_t i = 0; i < d; ++i) {
            for (std::size_t j = 0; j < 7; ++j) CHECK(wide(i, j) == out(i, j));
            for (std::size_t j = 7; j < cap; ++j) CHECK(wide(i, j) == 0.0);
        }
        const bool same = leading_columns_of(wide, 7) == out;
        CHECK(same);
        CHECK_THROWS_AS(orthonormal_extension(wide, 7, e), std::invalid_argument);
    }
}

TEST_CASE("denoising_restart: Vᵀ Bd V once per set of blocks, shared by the masks, not carried; R, Sxx R rotated in place",
          "[align][verification][refinement]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const data d = prepare(1500);
    const statistics clean = finish(d.acc, centering::uncentered);
    const std::size_t r = 24;
    spectrum top = clean.spec;
    top.eigenvalues = xt::view(clean.spec.eigenvalues, xt::range(0, r));
    top.basis = columns(clean.spec.basis, r);
    const std::vector<noise_spec> noises = {parse_noise_spec("mask:patch=2x2,ratio=0.75,scheme=fixed"),
                                            parse_noise_spec("mask:patch=2x2,ratio=0.5")};
    const std::vector<const patch_blocks*> blocks = {&d.blocks, &d.blocks};
    matrix_t q = top.basis;
    for (const noise_spec& n : noises) q = orthonormal_extension(q, sketched_denoising_subspace(top, n, &d.blocks).basis);
    refinement_options ro;
    ro.rank = r;
    ro.count = 8;
    restricted_statistics pass = verify(d, q, centering::uncentered);
    const restricted_statistics first = pass;  // products() and the cache below are added to `pass`
    refinement_step step = denoising_restart(top, pass, noises, blocks, ro);
    REQUIRE(!step.stopped);
    const std::size_t a = step.next.carried, m = step.next.k();
    REQUIRE(a > r);
    REQUIRE(m > a);
    // R = Q C and Sxx R = (Sxx Q) C, formed in Q's storage: the same as the products formed
    // apart (R's first r columns are U itself, bit for bit); the T columns of Sxx R are 0.
    const restricted_statistics& known = step.next.known;
    CHECK(testing::rel_diff(columns(known.basis, r), top.basis) == 0.0);
    matrix_t qr = xt::zeros<double>({first.k(), a});
    const matrix_t rb = columns(known.basis, a), srb = columns(known.sv, a);
    blas::gemm_tn(first.k(), a, q.shape(0), 1.0, first.basis.data(), rb.data(), 0.0, qr.data());  // C = Qᵀ R
    matrix_t expect_sr = xt::zeros<double>({q.shape(0), a});
    blas::gemm_nn(q.shape(0), a, first.k(), 1.0, first.sv.data(), qr.data(), 0.0, expect_sr.data());
    CHECK(testing::rel_diff(srb, expect_sr) < 1e-12);
    for (std::size_t i = 0; i < q.shape(0); ++i)
        for (std::size_t j = a; j < m; ++j) REQUIRE(known.sv(i, j) == 0.0);
    // Qᵀ Bd Q, one for both masks (one set of blocks), is the blocks' own; Rᵀ Bd R = Cᵀ (Qᵀ Bd Q) C
    // is carried into the next pass (a x a, exactly symmetric), for the same blocks.
    REQUIRE(pass.blocks_known.size() == 1);
    CHECK(testing::rel_diff(pass.blocks_known[0].leading, d.blocks.restrict_to(first.basis, centering::uncentered)) < 1e-12);
    REQUIRE(known.blocks_known.size() == 1);
    const known_blocks& carried_bd = known.blocks_known[0];
    CHECK(carried_bd.is_of(d.blocks));
    REQUIRE(carried_bd.leading.shape(0) == a);
    REQUIRE(carried_bd.leading.shape(1) == a);
    CHECK(testing::rel_diff(carried_bd.leading, d.blocks.restrict_to(rb, centering::uncentered)) < 1e-12);
    CHECK(carried_bd.leading == xt::transpose(carried_bd.leading));
    // Blocks of another geometry or row count are not these: the cache is not theirs.
    patch_blocks_options other = d.blocks.options();
    other.patch_h = other.patch_w = 1;
    CHECK_FALSE(carried_bd.is_of(patch_blocks(other)));
    // The next pass completed from T alone: its Vᵀ Bd V is the carried Rᵀ Bd R and a sweep over
    // T only (restricted_blocks), equal to a sweep over the whole of [R, T] to rounding, and the
    // whole restart gives the numbers of one on a full pass over [R, T].
    restricted_statistics on_t = verify(d, step.next.fresh(), centering::uncentered);
    refinement_pass spilled = step.next;  // as the CLI holds it during the pass: on disk (io::row_spill)
    spilled.spill(io::spill_directory());
    restricted_statistics done_on_disk = complete_pass(std::move(spilled), restricted_statistics(on_t));
    restricted_statistics done = complete_pass(std::move(step.next), std::move(on_t));
    const restricted_statistics full = verify(d, done.basis, centering::uncentered);
    REQUIRE(done.blocks_known.size() == 1);  // complete_pass keeps what R knows
    REQUIRE(done.blocks_known[0].leading.shape(0) == a);
    CHECK(testing::rel_diff(restricted_blocks(done, d.blocks), d.blocks.restrict_to(full.basis, centering::uncentered)) < 1e-12);
    restricted_statistics plain = full;
    const refinement_step again = denoising_restart(top, done, noises, blocks, ro, &step.curves);
    const refinement_step control = denoising_restart(top, plain, noises, blocks, ro, &step.curves);
    REQUIRE(again.curves.size() == control.curves.size());
    CHECK(xt::amax(xt::abs(again.curves - control.curves))() < 1e-10);
    REQUIRE(again.next.k() == control.next.k());
    // The restart on Sxx V on disk (sv_stored: read a block of rows at a time) gives the same bits.
    REQUIRE(done_on_disk.sv_stored);
    const refinement_step streamed = denoising_restart(top, done_on_disk, noises, blocks, ro, &step.curves);
    CHECK(xt::amax(xt::abs(streamed.curves - again.curves))() == 0.0);
    REQUIRE(streamed.next.known.sv_stored);
    restricted_statistics streamed_known = streamed.next.known;
    streamed_known.load_sv();
    CHECK(testing::rel_diff(streamed_known.basis, again.next.known.basis) == 0.0);
    CHECK(testing::rel_diff(streamed_known.sv, again.next.known.sv) == 0.0);
    CHECK(testing::rel_diff(streamed_known.svsv, again.next.known.svsv) == 0.0);
    // The same span (orthonormal bases, so K − ‖AᵀB‖² = Σ sin² of the principal angles; the
    // columns themselves are not stable under rounding: orthonormal_extension rotates by the
    // eigenvectors of a Gram matrix near I).
    const matrix_t &ga = again.next.known.basis, &gc = control.next.known.basis;
    matrix_t ab = xt::zeros<double>({ga.shape(1), gc.shape(1)});
    blas::gemm_tn(ga.shape(1), gc.shape(1), ga.shape(0), 1.0, ga.data(), gc.data(), 0.0, ab.data());
    double inside = 0.0;
    for (double v : ab) inside += v * v;
    CHECK(static_cast<double>(ga.shape(1)) - inside < 1e-8);
}

TEST_CASE("orthonormal_extension of nearly dependent columns: orthonormal to rounding, Q kept bit for bit",
          "[align][verification]") {
    // The hard cases for the projections: columns that lie almost entirely in span Q (what is
    // left after projecting is 1e-3 .. 1e-6 of them, then normalised: any Q-component the
    // projections left is amplified by up to 1e6), exactly dependent ones (dropped), and a
    // near-copy of another extra column. (Smaller remainders are below what the Gram matrix of
    // the columns resolves, ε ‖Y‖²: kept or dropped by rounding, as any Gram-based step does.)
    const std::size_t d = 2000, m = 60;
    std::mt19937_64 rng(17);
    std::normal_distribution<double> z;
    matrix_t raw = xt::zeros<double>({d, m});
    for (double& x : raw) x = z(rng);
    matrix_t q = eigen_orthonormal(raw, m);
    q = eigen_orthonormal(q, m);  // twice: orthonormal to rounding
    const std::vector<double> tiny = {1e-3, 1e-4, 1e-5, 1e-6};
    const std::size_t e = 2 + tiny.size() + 3;
    matrix_t extra = xt::zeros<double>({d, e});
    std::vector<double> coef(m);
    for (std::size_t j = 0; j < e; ++j) {
        for (double& c : coef) c = z(rng);
        for (std::size_t i = 0; i < d; ++i) {
            double in_q = 0.0;
            for (std::size_t p = 0; p < m; ++p) in_q += q(i, p) * coef[p];
            const double r = z(rng);
            if (j < 2) extra(i, j) = r;                                  // plain new directions
            else if (j < 2 + tiny.size()) extra(i, j) = in_q + tiny[j - 2] * r;  // nearly in span Q
            else if (j < e - 1) extra(i, j) = in_q;                      // in span Q: dropped
            else extra(i, j) = extra(i, 1) + 1e-6 * r;                   // a near-copy of column 1
        }
    }
    const matrix_t out = orthonormal_extension(q, extra);
    REQUIRE(out.shape(1) == m + 2 + tiny.size() + 1);  // every column but the two in span Q
    const std::size_t k = out.shape(1);
    matrix_t g = xt::zeros<double>({k, k});
    blas::gemm_tn(k, k, d, 1.0, out.data(), out.data(), 0.0, g.data());
    double worst = 0.0;
    for (std::size_t i = 0; i < k; ++i)
        for (std::size_t j = 0; j < k; ++j) worst = std::max(worst, std::abs(g(i, j) - (i == j ? 1.0 : 0.0)));
    INFO("largest |G - I| " << worst);  // measured 2.2e-15
    CHECK(worst < 1e-13);
    for (std::size_t i = 0; i < d; ++i)
        for (std::size_t j = 0; j < m; ++j) CHECK(out(i, j) == q(i, j));
}

TEST_CASE("tradeoff_excess_estimate: a loss below 1e-8 tr Syy is an exact fit, above it the excess counts",
          "[align][verification]") {
    // Two classes; x1 = 1{class 0} + δ z, x2 = 1{class 1}, x3 = z (z standard normal). All of R^3
    // fits the targets exactly (1{class 0} = x1 − δ x3): the optimum's loss is 0. Span(e1, e2)
    // misses only δ z, so its λ = 0 loss is about δ² Σ z² (far above rounding for δ = 3e-7: 9e-14
    // of tr Syy = n, against n·ε), all of it excess. With one block of all three coordinates Ĝ =
    // Sxx, so tr(Rᵀ Ĝ⁻¹ R) is that excess exactly and, relative to the loss, about 1 whatever δ:
    // the adaptive stop would never fire on a fit exact to 1e-14 (what n <= D gives on any
    // kernels, docs/benchmarks-log.md; on Haswell the loss there happened to round to <= 0, so the CLI's
    // test did not see it). The floor makes it e / (1e-8 tr Syy), below the stop; a loss above the
    // floor keeps its ratio.
    constexpr std::size_t n = 500;
    std::mt19937_64 gen(7);
    std::normal_distribution<double> normal;
    std::vector<double> z(n);
    std::vector<std::uint8_t> y(n);
    for (std::size_t i = 0; i < n; ++i) {
        z[i] = normal(gen);
        y[i] = static_cast<std::uint8_t>(i % 3 == 0);  // a third in class 1
    }
    patch_blocks_options po;
    po.shape = {3, 1, 1, image_layout::hwc};
    po.patch_h = 3;  // one block: Ĝ = Sxx
    matrix_t q = xt::zeros<double>({3, 2});
    q(0, 0) = q(1, 1) = 1.0;
    for (const double delta : {3e-7, 1e-2}) {
        std::vector<double> x(3 * n);
        for (std::size_t i = 0; i < n; ++i) {
            x[3 * i] = (y[i] == 0 ? 1.0 : 0.0) + delta * z[i];
            x[3 * i + 1] = y[i] == 1 ? 1.0 : 0.0;
            x[3 * i + 2] = z[i];
        }
        moment_accumulator acc({3, target_mode::class_ids, 2});
        acc.update(batch_view(x.data(), n, 3), target_view::class_ids(y.data(), n));
        patch_blocks blocks(po);
        blocks.update(batch_view(x.data(), n, 3));
        restricted_moments_options ro;
        ro.basis = q;
        ro.classes = 2;
        restricted_moments rm(ro);
        rm.update(batch_view(x.data(), n, 3), target_view::class_ids(y.data(), n));
        const restricted_statistics pass = rm.finish(centering::uncentered);
        statistics sketch = finish(acc, centering::uncentered);
        sketch.spec.eigenvalues = xt::view(sketch.spec.eigenvalues, xt::range(0, 1));
        sketch.spec.basis = columns(sketch.spec.basis, 1);
        sketch.second_moment.reset();
        const tradeoff_residual res = tradeoff_galerkin_residual(sketch, pass);
        const tradeoff_excess e = tradeoff_excess_estimate(sketch, blocks, pass);
        const double syy = pass.cross->syy_trace(), floor = 1e-8 * syy;
        double z2 = 0.0;
        for (double v : z) z2 += v * v;
        INFO("delta " << delta << ": loss " << res.supervised_loss << " (tr Syy " << syy << "), estimate " << e.estimate);
        CHECK(res.supervised_loss > 0.0);
        CHECK(res.supervised_loss <= 1.01 * delta * delta * z2);  // the fit leaves at most δ z (+ rounding)
        CHECK(res.supervised_loss >= 0.5 * delta * delta * z2);
        // e = tr(Rᵀ Sxx⁻¹ R) = the loss itself (the optimum is 0), to rounding.
        const double excess = e.estimate * std::max(res.supervised_loss, floor);
        CHECK(excess == Approx(res.supervised_loss).epsilon(0.05));
        if (delta < 1e-4) {
            CHECK(res.supervised_loss < 1e-12 * syy);  // well below the floor ...
            CHECK(e.estimate < tradeoff_stop);         // ... so the stop fires
        } else {
            CHECK(res.supervised_loss > floor);
            // The whole loss is excess: 1 up to about 1e-6 here (0.99999905 when the moments'
            // first batch was scattered about its first row, 1.0000020 about its mean: the
            // rounding of the three accumulators' Sxx, amplified by the fit's cancellation).
            CHECK(e.estimate == Approx(1.0).epsilon(1e-5));
        }
    }
}

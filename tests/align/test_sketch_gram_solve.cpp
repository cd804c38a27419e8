// MATH.md §7, "Cholesky where it is proven": sketched_gram_solve solves a block E_b of
// E = (c1 + c2) Bd − c1 blockdiag(U Λ Uᵀ) by Cholesky only when every eigenvalue is proven
// above the null cut, else by its eigendecomposition (the pseudo-inverse on the pixels that
// vary). Both routes are checked against Ĝ⁻¹R formed densely (Ĝ = E + c1 U Λ Uᵀ, D x D, one
// LAPACK Cholesky of the whole matrix, restricted to the pixels that vary: no blocks, no
// Woodbury) and against each other.
#include <catch2/catch.hpp>

#include <cmath>
#include <string>
#include <vector>

#include <recalign/align/sketch_denoising.hpp>
#include <recalign/core/blas.hpp>
#include <recalign/io/spill.hpp>
#include <recalign/spectral/statistics.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
// 10x10x3 (D = 300) with 4x4 patches: blocks of 48, 24 (edges) and 12 (the corner).
constexpr std::size_t side = 10, channels = 3, dim = side * side * channels, rows = 600;

struct prepared {
    statistics clean;
    patch_blocks blocks;
};

// Correlated rows (three smooth common factors on independent noise), the pixels in `null`
// (flat indices) set to 0 in every row: they never vary, in either centering; those in `faint`
// scaled by 1e-6 (a second moment ~1e-13 of the others': below the null cut, not zero).
prepared prepare(const std::vector<std::size_t>& null, centering c, const std::vector<std::size_t>& faint = {}) {
    std::vector<double> x = testing::random_rows(rows, dim, 41);
    recalign::rng::stream s(42, 0, 0);
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t f = 0; f < 3; ++f) {
            const double z = 6.0 * s.normal(r * 3 + f);
            for (std::size_t i = 0; i < dim; ++i) x[r * dim + i] += z * std::cos(0.05 * static_cast<double>((f + 1) * i));
        }
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i : null) x[r * dim + i] = 0.0;
    for (std::size_t r = 0; r < rows; ++r)
        for (std::size_t i : faint) x[r * dim + i] *= 1e-6;
    const std::vector<std::int64_t> y = testing::random_labels(rows, 4, 43);
    moment_accumulator acc({dim, target_mode::class_ids, 4});
    patch_blocks_options po;
    po.shape = {side, side, channels, image_layout::hwc};
    po.patch_h = po.patch_w = 4;
    patch_blocks blocks(po);
    acc.update(batch_view(x.data(), rows, dim), target_view::class_ids(y.data(), rows));
    blocks.update(batch_view(x.data(), rows, dim));
    return {finish(acc, c), std::move(blocks)};
}

spectrum top(const spectrum& s, std::size_t r) {
    spectrum t = s;
    t.eigenvalues = xt::view(s.eigenvalues, xt::range(0, r));
    t.basis = xt::view(s.basis, xt::all(), xt::range(0, r));
    return t;
}

matrix_t random_rhs(std::size_t cols) {
    matrix_t r = xt::zeros<double>({dim, cols});
    recalign::rng::stream s(44, 0, 0);
    for (std::size_t i = 0; i < dim; ++i)
        for (std::size_t j = 0; j < cols; ++j) r(i, j) = s.normal(i * cols + j);
    return r;
}

// Ĝ⁻¹R on the coordinates not in `null` (0 on those), Ĝ = (c1 + c2) Bd + c1 (UΛUᵀ − blockdiag(UΛUᵀ))
// formed densely and solved by one Cholesky of its varying part.
matrix_t dense_solve(const spectrum& sk, const patch_blocks& blocks, const noise_spec& noise, const matrix_t& rhs,
                     const std::vector<std::size_t>& null) {
    const keep_probabilities keep = blocks.coefficients(noise);
    const std::size_t r = sk.rank(), e = rhs.shape(1);
    matrix_t g = xt::zeros<double>({dim, dim});
    for (std::size_t i = 0; i < dim; ++i)
        for (std::size_t j = 0; j < dim; ++j) {
            double v = 0.0;
            for (std::size_t k = 0; k < r; ++k) v += sk.basis(i, k) * sk.eigenvalues(k) * sk.basis(j, k);
            g(i, j) = keep.k_diff * v;
        }
    for (std::size_t b = 0; b < blocks.blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks.indices(b);
        const matrix_t bd = blocks.block(b, sk.center);
        for (std::size_t i = 0; i < idx.size(); ++i)
            for (std::size_t j = 0; j < idx.size(); ++j) {
                double v = 0.0;
                for (std::size_t k = 0; k < r; ++k) v += sk.basis(idx[i], k) * sk.eigenvalues(k) * sk.basis(idx[j], k);
                g(idx[i], idx[j]) += keep.k_same * bd(i, j) - keep.k_diff * v;
            }
    }
    std::vector<std::size_t> live;
    for (std::size_t i = 0; i < dim; ++i)
        if (std::find(null.begin(), null.end(), i) == null.end()) live.push_back(i);
    const std::size_t n = live.size();
    matrix_t gl = xt::zeros<double>({n, n}), x = xt::zeros<double>({n, e});
    for (std::size_t i = 0; i < n; ++i) {
        for (std::size_t j = 0; j < n; ++j) gl(i, j) = g(live[i], live[j]);
        for (std::size_t j = 0; j < e; ++j) x(i, j) = rhs(live[i], j);
    }
    REQUIRE(blas::potrf_upper(n, gl.data()) == 0);
    blas::trsm_left_upper(true, n, e, gl.data(), x.data());
    blas::trsm_left_upper(false, n, e, gl.data(), x.data());
    matrix_t out = xt::zeros<double>({dim, e});
    for (std::size_t i = 0; i < n; ++i)
        for (std::size_t j = 0; j < e; ++j) out(live[i], j) = x(i, j);
    return out;
}

// max |a − b| / max |b|
double relative(const matrix_t& a, const matrix_t& b) {
    double num = 0.0, den = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(a.data()[i] - b.data()[i]));
        den = std::max(den, std::abs(b.data()[i]));
    }
    return num / den;
}

std::size_t flat(std::size_t h, std::size_t w, std::size_t c) { return (h * side + w) * channels + c; }
}  // namespace

TEST_CASE("sketched_gram_solve: the Cholesky route equals the eigen route where every eigenvalue is above the cut",
          "[align][sketch_denoising]") {
    for (centering c : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(c));
        const prepared p = prepare({}, c);
        const spectrum sk = top(p.clean.spec, 40);  // a truncated sketch: E is not c2 Bd
        const matrix_t rhs = random_rhs(6);
        for (const char* text : {"mask:patch=4x4,ratio=0.75,scheme=fixed", "mask:patch=4x4,ratio=0.5"}) {
            CAPTURE(text);
            const noise_spec noise = parse_noise_spec(text);
            sketch_denoising_options eigen_only;
            eigen_only.cholesky = false;
            block_solve_counts ch, ei;
            const matrix_t a = sketched_gram_solve(sk, noise, p.blocks, rhs, {}, &ch);
            const matrix_t b = sketched_gram_solve(sk, noise, p.blocks, rhs, eigen_only, &ei);
            CHECK(ch.cholesky == p.blocks.blocks());  // every block proven
            CHECK(ch.eigen == 0);
            CHECK(ei.eigen == p.blocks.blocks());
            const double routes = relative(a, b), dense = relative(a, dense_solve(sk, p.blocks, noise, rhs, {}));
            CAPTURE(routes, dense);
            CHECK(routes < 1e-10);
            CHECK(dense < 1e-10);
            // The subspace built on the same block solves: the same eigenvalues either way.
            const denoising_subspace_result sa = sketched_denoising_subspace(sk, noise, &p.blocks);
            const denoising_subspace_result sb = sketched_denoising_subspace(sk, noise, &p.blocks, eigen_only);
            REQUIRE(sa.informative == sb.informative);
            REQUIRE(sa.rank_g == dim);
            for (std::size_t j = 0; j < sa.informative; ++j)
                CHECK(sa.eigenvalues(j) == Approx(sb.eigenvalues(j)).epsilon(1e-10));
        }
    }
}

TEST_CASE("sketched_gram_solve: a block with pixels that never vary takes the eigen route, the pseudo-inverse",
          "[align][sketch_denoising]") {
    // The whole top-left patch (48 values) and one pixel (3 values) of the patch at (4..7, 4..7).
    std::vector<std::size_t> null;
    for (std::size_t h = 0; h < 4; ++h)
        for (std::size_t w = 0; w < 4; ++w)
            for (std::size_t c = 0; c < channels; ++c) null.push_back(flat(h, w, c));
    for (std::size_t c = 0; c < channels; ++c) null.push_back(flat(5, 6, c));
    for (centering c : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(c));
        const prepared p = prepare(null, c);
        const spectrum sk = top(p.clean.spec, 40);
        const matrix_t rhs = random_rhs(5);
        const noise_spec noise = parse_noise_spec("mask:patch=4x4,ratio=0.75,scheme=fixed");
        block_solve_counts counts;
        const matrix_t a = sketched_gram_solve(sk, noise, p.blocks, rhs, {}, &counts);
        CHECK(counts.eigen == 2);  // the two blocks with null pixels, nothing else
        CHECK(counts.cholesky == p.blocks.blocks() - 2);
        const matrix_t want = dense_solve(sk, p.blocks, noise, rhs, null);
        const double diff = relative(a, want);
        CAPTURE(diff);
        CHECK(diff < 1e-9);
        double on_null = 0.0;
        for (std::size_t i : null)
            for (std::size_t j = 0; j < rhs.shape(1); ++j) on_null = std::max(on_null, std::abs(a(i, j)));
        CHECK(on_null < 1e-12);
        // Moved in, the right-hand side's storage holds the result (the rows of the block nothing
        // solves set to 0, not left as they were): the same bits as from a copy.
        matrix_t moved = rhs;
        const matrix_t in_place = sketched_gram_solve(sk, noise, p.blocks, std::move(moved));
        CHECK(relative(in_place, a) == 0.0);
        const denoising_subspace_result s = sketched_denoising_subspace(sk, noise, &p.blocks);
        CHECK(s.rank_g == dim - null.size());
    }
}

TEST_CASE("sketched_gram_solve: a block with an eigenvalue below the cut, not zero, is not solved by Cholesky",
          "[align][sketch_denoising]") {
    // Its Cholesky factor exists (the block is positive definite) but E_b⁺ drops that
    // direction: only the shifted factorisation's proof keeps the block on the eigen route.
    const std::vector<std::size_t> faint = {flat(8, 1, 0), flat(8, 1, 1), flat(8, 1, 2)};
    for (centering c : {centering::uncentered, centering::centered}) {
        CAPTURE(centering_name(c));
        const prepared p = prepare({}, c, faint);
        const spectrum sk = top(p.clean.spec, 40);
        const matrix_t rhs = random_rhs(5);
        const noise_spec noise = parse_noise_spec("mask:patch=4x4,ratio=0.5");
        sketch_denoising_options eigen_only;
        eigen_only.cholesky = false;
        block_solve_counts counts;
        const matrix_t a = sketched_gram_solve(sk, noise, p.blocks, rhs, {}, &counts);
        const matrix_t b = sketched_gram_solve(sk, noise, p.blocks, rhs, eigen_only);
        CHECK(counts.eigen == 1);
        CHECK(counts.cholesky == p.blocks.blocks() - 1);
        const double diff = relative(a, b);
        CAPTURE(diff);
        CHECK(diff < 1e-10);
        CHECK(sketched_denoising_subspace(sk, noise, &p.blocks).rank_g == dim - faint.size());
    }
}

namespace {
// The cache's tests: the top-left patch never varies (so both routes are taken), the top 40 of
// the spectrum, a fixed-count and a Bernoulli mask.
struct cached_pieces {
    prepared p;
    spectrum sk;
    noise_spec fixed, bernoulli;
};
cached_pieces cache_case() {
    std::vector<std::size_t> null;
    for (std::size_t h = 0; h < 4; ++h)
        for (std::size_t w = 0; w < 4; ++w)
            for (std::size_t c = 0; c < channels; ++c) null.push_back(flat(h, w, c));
    prepared p = prepare(null, centering::centered);
    spectrum sk = top(p.clean.spec, 40);
    return {std::move(p), std::move(sk), parse_noise_spec("mask:patch=4x4,ratio=0.75,scheme=fixed"),
            parse_noise_spec("mask:patch=4x4,ratio=0.5")};
}
}  // namespace

TEST_CASE("sketched_gram_solve: a cache of the blocks' factors gives the bits of a solve without it",
          "[align][sketch_denoising]") {
    // The Cholesky and the eigen routes (the top-left patch never varies) both kept, in memory
    // and on disk; each call with a right-hand side of other widths and values.
    const cached_pieces c = cache_case();
    const prepared& p = c.p;
    const spectrum& sk = c.sk;
    const noise_spec &fixed = c.fixed, &bernoulli = c.bernoulli;
    for (const std::string& dir : {std::string(), io::spill_directory()}) {
        CAPTURE(dir);
        gram_solve_cache cache;
        for (std::size_t cols : {6, 3, 9}) {
            CAPTURE(cols);
            matrix_t rhs = random_rhs(cols);
            for (std::size_t i = 0; i < dim; ++i)
                for (std::size_t j = 0; j < cols; ++j) rhs(i, j) *= 1.0 + 0.1 * static_cast<double>(cols);
            for (const noise_spec& noise : {fixed, bernoulli}) {
                block_solve_counts plain, cached;
                const matrix_t want = sketched_gram_solve(sk, noise, p.blocks, rhs, {}, &plain);
                const matrix_t got = sketched_gram_solve(sk, noise, p.blocks, rhs, {}, &cached, &cache, dir);
                CHECK(relative(got, want) == 0.0);
                CHECK(cached.eigen == plain.eigen);
                CHECK(cached.cholesky == plain.cholesky);
            }
            CHECK(cache.entries.size() == 2);  // one per noise, formed at the first width
        }
        // Other pieces: another sketch, other options. Each its own entry, the oldest dropped.
        sketch_denoising_options eigen_only;
        eigen_only.cholesky = false;
        const spectrum narrower = top(p.clean.spec, 30);
        const matrix_t rhs = random_rhs(4);
        CHECK(relative(sketched_gram_solve(narrower, fixed, p.blocks, rhs, {}, nullptr, &cache, dir),
                       sketched_gram_solve(narrower, fixed, p.blocks, rhs)) == 0.0);
        CHECK(cache.entries.size() == 3);
        CHECK(relative(sketched_gram_solve(sk, fixed, p.blocks, rhs, eigen_only, nullptr, &cache, dir),
                       sketched_gram_solve(sk, fixed, p.blocks, rhs, eigen_only)) == 0.0);
        CHECK(relative(sketched_gram_solve(sk, bernoulli, p.blocks, rhs, eigen_only, nullptr, &cache, dir),
                       sketched_gram_solve(sk, bernoulli, p.blocks, rhs, eigen_only)) == 0.0);
        CHECK(cache.entries.size() == gram_solve_cache_entries);
        // A sketch whose basis differs in one element only is other pieces too.
        spectrum moved = sk;
        moved.basis(7, 3) = std::nextafter(moved.basis(7, 3), 1.0);
        CHECK(relative(sketched_gram_solve(moved, fixed, p.blocks, rhs, {}, nullptr, &cache, dir),
                       sketched_gram_solve(moved, fixed, p.blocks, rhs)) == 0.0);
        CHECK(cache.entries.size() == gram_solve_cache_entries);
    }
}

TEST_CASE("sketched_denoising_subspace records sketched_gram_solve's cache entry: the same bits for both",
          "[align][sketch_denoising]") {
    // Both routes (the top-left patch never varies), in memory and on disk: the subspace is the
    // bits of one found without a cache, and a solve that finds the entry the bits of one without.
    const cached_pieces c = cache_case();
    const patch_blocks& blocks = c.p.blocks;
    for (const std::string& dir : {io::spill_directory(), std::string()}) {
        CAPTURE(dir);
        gram_solve_cache cache;  // on disk (as the CLI keeps it), then in memory
        for (const noise_spec& noise : {c.fixed, c.bernoulli}) {
            const denoising_subspace_result want = sketched_denoising_subspace(c.sk, noise, &blocks);
            const denoising_subspace_result got = sketched_denoising_subspace(c.sk, noise, &blocks, {}, &cache, dir);
            CHECK(relative(got.basis, want.basis) == 0.0);
            CHECK(got.eigenvalues == want.eigenvalues);
            CHECK(got.rank_g == want.rank_g);
        }
        REQUIRE(cache.entries.size() == 2);
        const auto first = cache.entries[0];
        // Found again, not formed again: the same entry.
        sketched_denoising_subspace(c.sk, c.fixed, &blocks, {}, &cache, dir);
        CHECK(cache.entries.size() == 2);
        CHECK(cache.entries[0] == first);
        for (const noise_spec& noise : {c.fixed, c.bernoulli}) {
            const matrix_t rhs = random_rhs(5);
            block_solve_counts plain, cached;
            const matrix_t want = sketched_gram_solve(c.sk, noise, blocks, rhs, {}, &plain);
            const matrix_t got = sketched_gram_solve(c.sk, noise, blocks, rhs, {}, &cached, &cache, dir);
            CHECK(relative(got, want) == 0.0);
            CHECK(cached.eigen == plain.eigen);
            CHECK(cached.cholesky == plain.cholesky);
            CHECK(plain.eigen > 0);  // both routes taken
            CHECK(plain.cholesky > 0);
        }
        CHECK(cache.entries.size() == 2);  // every solve found its entry
        // Gaussian noise needs no blocks and records nothing.
        sketched_denoising_subspace(c.sk, parse_noise_spec("gaussian:sigma=0.1"), &blocks, {}, &cache, dir);
        CHECK(cache.entries.size() == 2);
    }
}

// The memory estimate of the sketch routes (recalign/align/verified_memory.hpp), which the CLI
// and Python refuse with: its parts against the sizes of the objects they stand for (the patch
// blocks' packed values, a block Krylov sketch's widest basis), the columns each analysis verifies, and
// sizes beyond 64 bits.
#include <catch2/catch.hpp>

#include <algorithm>

#include <recalign/align/patch_blocks.hpp>
#include <recalign/align/sketch_denoising.hpp>
#include <recalign/align/verified_memory.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

namespace {
noise_spec spec(const char* text) { return parse_noise_spec(text); }
}  // namespace

TEST_CASE("run_memory: the D x D moments of the exact route, a few rank x D blocks of a sketch, the class statistics") {
    CHECK(run_memory("exact", 100, 0, 0) == 8.0L * 3 * 100 * 100);
    CHECK(run_memory("nystrom", 100, 0, 7) == 8.0L * 6 * 7 * 100);
    // FD, l = frequent_directions_default_ell = min(3 rank, D) = 21: the buffer (2 l x D), the
    // shrink's 2l x 2l Gram matrix and two scratch copies, its rotation's l x min(D, 2,048)
    // scratch and the f32 kernels' 2l x and l x min(D, 8,192) float blocks (1.5 l min(D, 8,192)
    // words); the finish's Gram matrix of the up to m = 2l + 1 rows with dsyevd's workspace
    // (4 m²), E = Bᵀ U_r, whose storage its Ritz vectors take (rank x D).
    CHECK(run_memory("fd", 100, 4, 7, 5.0L) ==
          8.0L * (2 * 21 * 100 + 3 * 42 * 42 + 21 * 100 + 1.5 * 21 * 100 + 4 * 43 * 43 + 7 * 100 + 2 * 101 * 4 + 16) +
              5.0L);
    CHECK(run_memory("fd", 10, 0, 7) ==
          8.0L * (2 * 10 * 10 + 3 * 20 * 20 + 10 * 10 + 1.5 * 10 * 10 + 4 * 21 * 21 + 7 * 10));  // l capped at D
    // D = 2^40 on the exact route: 3 D^2 doubles is far beyond 2^64 bytes, and no wrap.
    CHECK(run_memory("exact", 1ULL << 40, 0, 0) > 1.8e19L);
}

TEST_CASE("alignment and tradeoff verify the rank's directions (tradeoff: 2 per class and pass more, the blocks)") {
    const verification_size a = alignment_verification(30);
    CHECK(a.columns == 30);
    CHECK(verification_memory(500, a.columns, a.extra) == 24.0L * 500 * 30);
    const verification_size t = tradeoff_verification(500, 10, 30);
    CHECK(t.columns == 70);
    CHECK(t.extra == 8.0L * (500 + 2 * 500 * 40 + 500 * 70));  // + the new basis beside the last span
    // Blocks of 64 coordinates: at least what patch_blocks holds for them (an edge block of 52).
    patch_blocks_options o;
    o.shape = {500, 1, 1, image_layout::hwc};
    o.patch_h = 64;
    const verification_size b = tradeoff_verification(500, 10, 30, 12, 64);
    CHECK(b.columns == 30 + 2 * 10 * 13);
    CHECK(b.extra >= 8.0L * static_cast<long double>(patch_blocks(o).values()) + 8.0L * 2 * 500 * 40);
}

TEST_CASE("denoising: blocks of each distinct geometry at least what patch_blocks holds, Monte-Carlo columns, D caps") {
    const image_shape shape{12, 10, 3, image_layout::hwc};
    const std::uint64_t d = shape.dim(), rank = 20;
    patch_blocks_options o;
    o.shape = shape;
    o.patch_h = o.patch_w = 4;
    const long double mask_blocks = 8.0L * static_cast<long double>(patch_blocks(o).values());
    o.patch_h = o.patch_w = 1;
    const long double dropout_blocks = 8.0L * static_cast<long double>(patch_blocks(o).values());

    // The sum the CLI refuses with is the run's largest phase (never below run_memory): through
    // the passes the sketch's state and its finished statistics (D x (2 rank + 20)) and the
    // blocks, then the largest of a pass (2 D x K; with refinement passes only the first, on U
    // and the sketched subspaces: the later ones read T beside the carried directions, whose Sxx
    // products wait on disk), the first basis construction and a refinement step (the previous pass's basis, its
    // Sxx V on disk; T's Sxx T, 64 per mask, while the pass is completed; one correction's
    // 4 x 64 + rank temporaries). Here rank = 20 < 64: r' = 20.
    const long double run = run_memory("nystrom", d, 0, rank), dd = static_cast<long double>(d);
    auto total = [&](const verification_size& v) { return run + verification_memory(d, v.columns, v.extra); };
    const verification_size gauss = denoising_verification(d, rank, {spec("gaussian:sigma=1")}, shape);
    CHECK(gauss.columns == rank);
    CHECK(total(gauss) == 8.0L * dd * (2 * 20 + 20 + 225) + 67108864.0L + 16.0L * dd * 20);  // state, one pass

    // Two masks of one geometry: one set of blocks, two noises' directions (rank + 2 min(64, rank) each:
    // Ritz vectors, the previous pass's tops, corrections), and the clean top's 3 min(64, rank)
    // (its Ritz vectors, their P block, their corrections; refinement passes only).
    const verification_size masks =
        denoising_verification(d, rank, {spec("mask:patch=4x4,ratio=0.5"), spec("mask:patch=4x4,ratio=0.2")}, shape);
    CHECK(masks.columns == rank + 2 * 3 * rank + 3 * rank);
    const long double kept = 8.0L * dd * (2 * 20 + 20 + 225) + 67108864.0L, pass = 16.0L * dd * 140;
    // And Vᵀ Bd V of the one set of blocks, m x m, kept through a restart and carried into the
    // next pass (restricted_statistics::blocks_known).
    const long double known = 8.0L * 200 * 200;
    const long double blocks = total(masks) - kept - known - 8.0L * dd * (200 + 3 * 20 + 4 * 20 + 20);
    // On disk: [R, T], [Sxx R, 0] and the joined Sxx [R, T]; and each mask's preconditioner
    // cache (time10): its block factors' file, reserved for Σ_b s_b (s_b + 1) words (at most
    // D (s + 1) for blocks of s = 48), and E⁺U (D x rank).
    const long double cache = 8.0L * dd * (4 * 4 * 3 + 1) + 8.0L * dd * 20;
    CHECK(masks.spill == 24.0L * dd * 200 + 2 * cache);
    CHECK(cache >= 2 * mask_blocks + 8.0L * dd * 20);  // mask_blocks: the packed triangles, Σ_b s_b (s_b + 1) / 2
    // At most gram_solve_cache_entries entries are kept, one more while it is made.
    std::vector<noise_spec> six;
    for (const char* r : {"0.1", "0.2", "0.3", "0.4", "0.5", "0.6"}) six.push_back(spec((std::string("mask:patch=4x4,ratio=") + r).c_str()));
    REQUIRE(gram_solve_cache_entries + 1 < six.size());
    const verification_size many_masks = denoising_verification(d, rank, six, shape);
    CHECK(many_masks.spill == 24.0L * dd * static_cast<long double>(many_masks.columns) +
                                  static_cast<long double>(gram_solve_cache_entries + 1) * cache);
    CHECK(blocks >= mask_blocks);
    CHECK(blocks < 2 * mask_blocks + 8.0L * d);  // counted once
    const verification_size unrefined = denoising_verification(
        d, rank, {spec("mask:patch=4x4,ratio=0.5"), spec("mask:patch=4x4,ratio=0.2")}, shape, false);
    CHECK(unrefined.columns == masks.columns - 3 * rank);  // no clean refinement
    // --refine 0: no refinement step, nothing on disk; the one pass reads U and the two subspaces.
    CHECK(total(unrefined) == kept + 16.0L * dd * 60 + blocks);
    CHECK(pass > 16.0L * dd * 60);
    CHECK(unrefined.spill == 0.0L);

    const verification_size dropout = denoising_verification(d, rank, {spec("dropout:ratio=0.5")}, shape);
    const long double one_mask = kept + 8.0L * dd * (120 + 2 * 20 + 4 * 20 + 20);
    CHECK(total(dropout) - one_mask >= dropout_blocks);  // 1x1 patches of 3 channels
    o.shape = image_shape{d, 1, 1, image_layout::hwc};
    const verification_size flat = denoising_verification(d, rank, {spec("dropout:ratio=0.5")}, {});
    CHECK(total(flat) - one_mask >= 8.0L * static_cast<long double>(patch_blocks(o).values()));
    CHECK(total(flat) < total(dropout));  // no shape: D x 1 x 1, one value per block

    // A Monte-Carlo noise: 3 (rank + 10) directions, no blocks; with many, D caps the columns.
    const verification_size mc = denoising_verification(d, rank, {spec("mask:patch=4x4,ratio=0.5,draws=2")}, shape);
    CHECK(mc.columns == rank + 3 * (rank + 10));
    const long double cols = static_cast<long double>(mc.columns);
    CHECK(total(mc) == kept + 48.0L * dd * (rank + 10) + 16.0L * (dd + cols) * cols + 16.0L * dd * cols);  // not refined
    CHECK(mc.spill == 0.0L);  // full passes: nothing on disk
    const verification_size many = denoising_verification(
        d, 2 * rank, {spec("dropout:ratio=0.5,draws=2"), spec("dropout:ratio=0.2,draws=3"), spec("gaussian:sigma=1,draws=2")},
        shape);
    CHECK(many.columns == d);
}

TEST_CASE("denoising, parked (the CLI): the sketch's state and basis on disk, the restart's cuts, the spill with them") {
    const image_shape shape{12, 10, 3, image_layout::hwc};
    const std::uint64_t d = shape.dim(), rank = 20;
    const long double dd = static_cast<long double>(d), k = 20.0L;
    const std::vector<noise_spec> masks = {spec("mask:patch=4x4,ratio=0.5"), spec("mask:patch=4x4,ratio=0.2")};
    const verification_size held = denoising_verification(d, rank, masks, shape, true, false);
    const verification_size parked = denoising_verification(d, rank, masks, shape, true, true);
    CHECK(parked.columns == held.columns);
    // Held: kept (state, U, the process) + blocks + the step (Q, 64 per mask, 4 x 64 + rank);
    // parked: the state on disk, U only in the step, which holds Q, U, E⁺U and 2 x 64 (r' = 20).
    const long double cols = static_cast<long double>(held.columns);
    const long double step_held = 8.0L * dd * (cols + 3 * k + 4 * k + k);  // two masks' and the clean top's corrections
    // A refinement pass holds [R, T] (Q's columns) beside its own T and Sxx T (3 x 64 each, r' =
    // 20): at this small rank more than the parked step.
    const long double refine_pass = 8.0L * dd * (cols + 2 * 3 * k);
    const long double step_parked = std::max(8.0L * dd * (cols + 2 * k + k) + 8.0L * dd * k, refine_pass);
    CHECK(step_parked == refine_pass);
    CHECK(held.extra - parked.extra == Approx(static_cast<double>(8.0L * dd * (2 * k + 20) + step_held - step_parked)));
    CHECK(parked.spill == held.spill + parked_sketch_bytes(d, rank, 0));
    CHECK(parked_sketch_bytes(d, rank, 10) - parked_sketch_bytes(d, rank, 0) == 8.0L * dd * 10);  // the class means
    CHECK(parked_sketch_bytes(d, rank, 0) >= 8.0L * dd * (2 * k + 20));  // the state (rank + 20) and U (rank)
    // Nothing is parked without incremental refinement passes: --refine 0, or a Monte-Carlo noise.
    for (bool refines : {false, true}) {
        const std::vector<noise_spec> n = refines ? std::vector<noise_spec>{spec("mask:patch=4x4,ratio=0.5,draws=2")} : masks;
        const verification_size a = denoising_verification(d, rank, n, shape, refines, false);
        const verification_size b = denoising_verification(d, rank, n, shape, refines, true);
        CHECK(a.extra == b.extra);
        CHECK(a.spill == b.spill);
    }
}

TEST_CASE("run_memory: a block Krylov sketch counted at its widest basis, at least what the sketch holds there") {
    const std::size_t d = 300, rank = 8, classes = 3, rows = 120;
    nystrom_options o;  // the routes' sketch (tools/recalign/route_state.cpp): p = max(rank, 10)
    o.dim = d;
    o.rank = rank;
    o.oversampling = 10;
    o.probes = 10;
    const std::vector<double> x = testing::random_rows(rows, d, 5);
    CHECK(run_memory("nystrom", d, classes, rank, 0.0L, 1) == run_memory("nystrom", d, classes, rank));
    for (std::size_t q : {2, 3, 4}) {
        INFO("passes = " << q);
        o.blocks = q;
        nystrom_sketch sk(o);
        for (std::size_t pass = 0; pass < q; ++pass) {
            if (pass) sk.next_pass();
            sk.update(batch_view(x.data(), rows, d), 0);
        }
        // The last pass holds Y, Q and every earlier pass's block and its product (K, C K).
        const long double held = 8.0L * static_cast<long double>(sk.range().size() + sk.test_matrix().size() +
                                                                  2 * sk.krylov_basis().size());
        CHECK(sk.krylov_basis().shape(1) == (q - 1) * sk.width());
        CHECK(run_memory("nystrom", d, classes, rank, 0.0L, q) >= held);
        CHECK(run_memory("nystrom", d, classes, rank, 0.0L, q) > run_memory("nystrom", d, classes, rank, 0.0L, q - 1));
        CHECK(run_memory("nystrom", d, classes, rank, 7.0L, q) == run_memory("nystrom", d, classes, rank, 0.0L, q) + 7.0L);
        CHECK(run_memory("fd", d, classes, rank, 0.0L, q) == run_memory("fd", d, classes, rank));  // no Krylov blocks
    }
}

TEST_CASE("denoising: OpenBLAS's buffers are 225 D doubles up to GEMM_Q x 8,192 (blas.cpp's row blocks), not 225 D") {
    // A Gaussian noise: the state, one pass, and `kept` (the process's 64 MiB and the buffers).
    // Products take at most 8,192 rows at a time (lib/core/blas.cpp), so above D = 13,981 the
    // buffers stop growing: 384 x 8,192 doubles (25.2 MB), where 225 D were 271 MB at 224x224x3.
    const std::vector<noise_spec> gauss = {spec("gaussian:sigma=1")};
    for (const std::uint64_t d : {std::uint64_t{12288}, std::uint64_t{150528}}) {
        const long double dd = static_cast<long double>(d), rank = 20.0L;
        const long double run = run_memory("nystrom", d, 0, 20);
        const verification_size v = denoising_verification(d, 20, gauss, image_shape{});
        const long double buffers = d == 12288 ? 225.0L * dd : 384.0L * 8192.0L;
        const long double expected = 8.0L * dd * 3.0L * rank + 8.0L * buffers + 67108864.0L + 16.0L * dd * rank;
        CHECK(static_cast<double>(run + verification_memory(d, v.columns, v.extra)) ==
              Approx(static_cast<double>(expected)).epsilon(1e-12));
    }
}

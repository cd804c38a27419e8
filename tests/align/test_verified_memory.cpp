// The memory estimate of the sketch routes (recalign/align/verified_memory.hpp), which the CLI
// and Python refuse with: its parts against the sizes of the objects they stand for (the patch
// blocks' packed values), the columns each analysis verifies, and sizes beyond 64 bits.
#include <catch2/catch.hpp>

#include <recalign/align/patch_blocks.hpp>
#include <recalign/align/verified_memory.hpp>

using namespace recalign;

namespace {
noise_spec spec(const char* text) { return parse_noise_spec(text); }
}  // namespace

TEST_CASE("run_memory: the D x D moments of the exact route, a few rank x D blocks of a sketch, the class statistics") {
    CHECK(run_memory("exact", 100, 0, 0) == 8.0L * 3 * 100 * 100);
    CHECK(run_memory("nystrom", 100, 0, 7) == 8.0L * 6 * 7 * 100);
    // FD: also its shrink's 2l x 2l Gram matrix and two scratch copies (l = min(2 rank, D) = 14).
    CHECK(run_memory("fd", 100, 4, 7, 5.0L) == 8.0L * (6 * 7 * 100 + 3 * 28 * 28 + 2 * 101 * 4 + 16) + 5.0L);
    CHECK(run_memory("fd", 10, 0, 7) == 8.0L * (6 * 7 * 10 + 3 * 20 * 20));  // l capped at D
    // D = 2^40 on the exact route: 3 D^2 doubles is far beyond 2^64 bytes, and no wrap.
    CHECK(run_memory("exact", 1ULL << 40, 0, 0) > 1.8e19L);
}

TEST_CASE("alignment and tradeoff verify the rank's directions (tradeoff: 2 per class and pass more, the blocks)") {
    const verification_size a = alignment_verification(30);
    CHECK(a.columns == 30);
    CHECK(verification_memory(500, a.columns, a.extra) == 24.0L * 500 * 30);
    const verification_size t = tradeoff_verification(500, 10, 30);
    CHECK(t.columns == 70);
    CHECK(t.extra == 8.0L * (500 + 2 * 500 * 40));
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

    const verification_size gauss = denoising_verification(d, rank, {spec("gaussian:sigma=1")}, shape);
    CHECK(gauss.columns == rank);
    CHECK(gauss.extra == 0.0L);  // nothing refined, no blocks: the analyses run in the pass's coordinates

    // Two masks of one geometry: one set of blocks, two noises' directions (rank + min(64, rank) each).
    const verification_size masks =
        denoising_verification(d, rank, {spec("mask:patch=4x4,ratio=0.5"), spec("mask:patch=4x4,ratio=0.2")}, shape);
    CHECK(masks.columns == rank + 2 * 2 * rank);
    // A refinement step's correction temporaries: 8 x 64 D-long vectors, once for all masks.
    const long double corrections = 8.0L * d * 8.0L * 64.0L;
    const long double blocks = masks.extra - corrections;
    CHECK(blocks >= mask_blocks);
    CHECK(blocks < 2 * mask_blocks + 8.0L * d);  // counted once
    const verification_size unrefined = denoising_verification(
        d, rank, {spec("mask:patch=4x4,ratio=0.5"), spec("mask:patch=4x4,ratio=0.2")}, shape, false);
    CHECK(unrefined.columns == masks.columns);
    CHECK(unrefined.extra == blocks);  // --refine 0: no correction temporaries

    const verification_size dropout = denoising_verification(d, rank, {spec("dropout:ratio=0.5")}, shape);
    CHECK(dropout.extra - corrections >= dropout_blocks);  // 1x1 patches of 3 channels
    o.shape = image_shape{d, 1, 1, image_layout::hwc};
    const verification_size flat = denoising_verification(d, rank, {spec("dropout:ratio=0.5")}, {});
    CHECK(flat.extra - corrections >= 8.0L * static_cast<long double>(patch_blocks(o).values()));
    CHECK(flat.extra < dropout.extra);  // no shape: D x 1 x 1, one value per block

    // A Monte-Carlo noise: 3 (rank + 10) directions, no blocks; with many, D caps the columns.
    const verification_size mc = denoising_verification(d, rank, {spec("mask:patch=4x4,ratio=0.5,draws=2")}, shape);
    CHECK(mc.columns == rank + 3 * (rank + 10));
    CHECK(mc.extra == 48.0L * d * (rank + 10) + 16.0L * (d + mc.columns) * mc.columns);  // not refined
    const verification_size many = denoising_verification(
        d, 2 * rank, {spec("dropout:ratio=0.5,draws=2"), spec("dropout:ratio=0.2,draws=3"), spec("gaussian:sigma=1,draws=2")},
        shape);
    CHECK(many.columns == d);
}

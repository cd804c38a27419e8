// denoise on a sketch route (MATH.md §7): the sketch and, for every patch geometry of the
// masking noises (dropout: 1x1), the exact patch blocks in the sketch passes; then the
// sketched denoising subspace of every noise, and a verification pass on
// span(U, V_1, ..., V_m). With a masking noise, --refine more passes, each on U,
// every masking noise's Ritz vectors from the previous pass and the preconditioned residuals
// of its first `refined` ones (denoising_refinement): every curve, relative difference and
// impact is computed from the last pass, exactly for the subspaces returned.
#include <algorithm>

#include "commands.hpp"
#include "sketch_route.hpp"
#include "verified_state.hpp"
#include "recalign/align/sketch_denoising.hpp"
#include "recalign/core/checked.hpp"

namespace recalign::cli {

namespace {

// The patch geometry a noise's blocks need (none for Gaussian noise).
std::optional<patch_blocks_options> geometry(const noise_spec& n, const image_shape& shape) {
    if (n.family == noise_family::gaussian) return std::nullopt;
    patch_blocks_options o;
    o.shape = n.shape.empty() ? shape : n.shape;
    o.patch_h = n.family == noise_family::mask ? n.patch_h : 1;
    o.patch_w = n.family == noise_family::mask ? n.patch_w : 1;
    return o;
}

// Ritz vectors of each masking noise refined by the second pass: the accuracy targets
// are for K <= 64; each costs 3 D doubles (check_verification).
constexpr std::size_t refined = 64;
// Refinement passes after the first verification pass (--refine): each restarts on span(U,
// the Ritz vectors of every masking noise, their corrections), so the space, and the memory,
// stay those of the first pass plus `refined` columns per masking noise. Measured (K <= 64,
// largest error of the relative difference): 24x24x3 synthetic, 8000 rows, 2x2 p = .5:
// 3.3e-3 after two steps, 3.3e-4 after four; 32x32x3, 12000 rows, 2x2 p = .5: 2.4e-2 after
// two, 5.6e-3 after four, 1.0e-4 after eight (the default); Fashion-MNIST, 20000 images: the
// normalised impact's error 1.3e-2 after one step, 3.3e-3 after two.

bool same(const patch_blocks_options& a, const patch_blocks_options& b) {
    return a.shape.height == b.shape.height && a.shape.width == b.shape.width && a.shape.channels == b.shape.channels &&
           a.shape.layout == b.shape.layout && a.patch_h == b.patch_h && a.patch_w == b.patch_w;
}

}  // namespace

denoise_result denoise_on_sketch(const denoise_cli_options& o, const prepared_run& run, const tracker_options& t,
                                 const mpi_context& mpi) {
    // Which blocks each noise reads (-1: none), one accumulator per distinct geometry.
    verify_plan plan;
    plan.center = run.center;
    std::vector<long> block_of;
    std::uint64_t block_bytes = 0, columns = run.config().rank;
    for (const noise_spec& n : t.noises) {
        const std::optional<patch_blocks_options> g = geometry(n, t.shape);
        long index = -1;
        if (g) {
            for (std::size_t i = 0; i < plan.blocks.size(); ++i)
                if (same(plan.blocks[i], *g)) index = static_cast<long>(i);
            if (index < 0) {
                index = static_cast<long>(plan.blocks.size());
                plan.blocks.push_back(*g);
                block_bytes = checked_add(block_bytes,
                                          checked_mul(8 * t.dim, g->patch_h * g->patch_w * g->shape.channels, "patch blocks"),
                                          "patch blocks");
            }
            columns += run.config().rank + std::min<std::uint64_t>(refined, run.config().rank);
        }
        block_of.push_back(index);
    }
    check_verification(o.run, run, mpi, columns, block_bytes);
    auto blocks_for = [&](std::size_t i, const std::vector<patch_blocks>& blocks) -> const patch_blocks* {
        return block_of[i] < 0 ? nullptr : &blocks[static_cast<std::size_t>(block_of[i])];
    };
    const std::vector<noise_spec> noises = t.noises;
    plan.passes = plan.blocks.empty() ? 1 : 1 + o.refine;
    const std::size_t rank = run.config().rank;
    plan.basis = [noises, blocks_for, rank](const statistics& s, const std::vector<patch_blocks>& blocks,
                                            const restricted_statistics* previous) {
        if (previous) {  // a refinement step: restarted on U, each noise's Ritz vectors and corrections
            matrix_t q = s.spec.basis;
            for (std::size_t i = 0; i < noises.size(); ++i) {
                if (!blocks_for(i, blocks)) continue;
                const ritz_denoising_result v = ritz_denoising(*previous, noises[i], blocks_for(i, blocks));
                const std::size_t k = std::min(rank, v.subspace.informative);
                q = orthonormal_extension(q, xt::view(v.refined.basis, xt::all(), xt::range(0, k)));
                q = orthonormal_extension(q, denoising_refinement(s.spec, *previous, noises[i], blocks_for(i, blocks), refined));
            }
            return q;
        }
        matrix_t q = s.spec.basis;
        for (std::size_t i = 0; i < noises.size(); ++i) {
            const denoising_subspace_result v = sketched_denoising_subspace(s.spec, noises[i], blocks_for(i, blocks));
            const matrix_t informative = xt::view(v.basis, xt::all(), xt::range(0, v.informative));
            q = orthonormal_extension(q, informative);
        }
        return q;
    };
    verified_state state(run.config(), plan);
    denoise_result r;
    r.run = stream(state, run, mpi);
    const statistics s = state.sketch();
    const restricted_statistics pass = state.verified();
    alignment_options opt;
    opt.measure = t.measure;
    const ritz_alignment_result clean = ritz_alignment(pass, opt);
    r.dim = t.dim;
    r.classes = t.classes;
    r.center = t.center;
    r.measure = t.measure;
    r.report.n = pass.n;
    r.report.clean = clean.curve;
    r.report.clean.method = s.method;
    r.report.clean_change = std::numeric_limits<double>::quiet_NaN();
    for (std::size_t i = 0; i < noises.size(); ++i) {
        const verified_denoising_result v = verified_denoising(clean, pass, noises[i], blocks_for(i, state.blocks()), opt);
        tracker_noise_report nr;
        nr.spec = to_string(noises[i]);
        nr.denoising = v.denoising;
        nr.impact = v.impact;
        nr.change = std::numeric_limits<double>::quiet_NaN();
        r.report.noises.push_back(std::move(nr));
    }
    r.sketch = describe_sketch(s, &clean, pass.k(), plan.passes);
    r.sketch->pass_seconds = state.pass_seconds();
    note_pass_seconds(*r.sketch, o.run.quiet);
    return r;
}

}  // namespace recalign::cli

#pragma once
// What the refinement tests start from (test_incremental_refinement.cpp, test_restart_faults.cpp):
// the first n Fashion-MNIST training rows (D = 784, uncentered, 10 classes), their full moments,
// their 2x2 patch blocks, and a restricted pass over them on a basis.

#include <algorithm>
#include <cstddef>

#include <recalign/align/patch_blocks.hpp>
#include <recalign/align/restricted_moments.hpp>
#include <recalign/spectral/statistics.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/fashion.hpp"

namespace testing {

struct refinement_data {
    fashion_subset f;
    recalign::patch_blocks_options po;
    recalign::statistics clean;
    recalign::patch_blocks blocks;

    explicit refinement_data(std::size_t n)
        : f(load_fashion(n, false)), po(patch_options()), clean(moments(f)), blocks(po) {
        blocks.update(recalign::batch_view(f.row(0), f.n, f.dim));
    }

private:
    static recalign::patch_blocks_options patch_options() {
        recalign::patch_blocks_options o;
        o.shape = {28, 28, 1, recalign::image_layout::hwc};
        o.patch_h = o.patch_w = 2;
        return o;
    }
    static recalign::statistics moments(const fashion_subset& f) {
        recalign::moment_accumulator acc({f.dim, recalign::target_mode::class_ids, 10});
        acc.update(recalign::batch_view(f.row(0), f.n, f.dim), recalign::target_view::class_ids(f.y.data(), f.n));
        return recalign::finish(acc, recalign::centering::uncentered);
    }
};

// A restricted pass over the rows (uncentered, 10 classes) on the basis v.
inline recalign::restricted_statistics verified(const fashion_subset& f, const recalign::matrix_t& v) {
    recalign::restricted_moments_options o;
    o.basis = v;
    o.classes = 10;
    recalign::restricted_moments r(o);
    for (std::size_t r0 = 0; r0 < f.n; r0 += 500) {
        const std::size_t b = std::min<std::size_t>(500, f.n - r0);
        r.update(recalign::batch_view(f.row(r0), b, f.dim), recalign::target_view::class_ids(f.y.data() + r0, b), r0);
    }
    return r.finish(recalign::centering::uncentered);
}

}  // namespace testing

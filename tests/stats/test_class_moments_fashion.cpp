// class_moments on real Fashion-MNIST rows: cross(c) equals the exact moment accumulator's
// with class-id targets in both centerings (MATH.md §1 for one-hot y), streaming the uint8
// pixels as the file holds them and the scaled doubles the align tests use, and merged
// halves equal one pass. Without the data set (Debian package dataset-fashion-mnist, or
// RECALIGN_FASHION_MNIST) the program exits 77: meson reports a skip, not a pass.
#include <catch2/catch.hpp>

#include <cstdint>
#include <vector>

#include <recalign/io/datasets.hpp>
#include <recalign/io/idx.hpp>
#include <recalign/stats/class_moments.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/fashion.hpp"
#include "../common/helpers.hpp"
#include "../data_sets.hpp"

using namespace recalign;

namespace {

void same_cross(const class_moments& cm, const moment_accumulator& ma, double tol) {
    for (const centering c : {centering::uncentered, centering::centered}) {
        INFO(centering_name(c));
        const cross_moments a = cm.cross(c), b = ma.cross(c);
        CHECK(a.n == b.n);
        const double sxy = testing::rel_diff(a.sxy, b.sxy), syy = testing::rel_diff(a.syy_dense(), b.syy_dense());
        INFO("Sxy relative difference " << sxy << ", Syy " << syy);
        CHECK(sxy < tol);
        CHECK(syy < tol);
    }
    CHECK(testing::rel_diff(cm.mean(), ma.mean_x()) < tol);
}

}  // namespace

TEST_CASE("Fashion-MNIST uint8 pixels streamed: class_moments' cross equals moment_accumulator's", "[class_moments][fashion]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const io::fashion_mnist_files files = io::fashion_mnist();
    io::idx_reader images(files.train_images), labels(files.train_labels);
    const std::size_t d = images.cols(), classes = 10, n = 20000, batch = 1000;
    class_moments cm({d, classes});
    moment_accumulator ma({d, target_mode::class_ids, classes});
    io::row_block block;
    std::vector<std::int64_t> y;
    std::size_t done = 0;
    while (done < n && images.read(std::min(batch, n - done), block) > 0) {
        labels.read_labels(block.rows, y);
        REQUIRE(block.type == dtype::u8);
        const batch_view v = block.view();
        cm.update(v, target_view::class_ids(y.data(), y.size()), done);
        ma.update(v, target_view::class_ids(y.data(), y.size()), done);
        done += block.rows;
    }
    REQUIRE(done == n);
    CHECK(cm.n() == n);
    std::uint64_t total = 0;
    for (const std::uint64_t k : cm.counts()) {
        CHECK(k > 0);  // every class occurs in 20,000 images
        total += k;
    }
    CHECK(total == n);
    same_cross(cm, ma, 1e-12);
}

TEST_CASE("Fashion-MNIST scaled rows: merged halves equal one pass and the exact accumulator", "[class_moments][fashion]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(4000, false);
    const std::size_t split = 1700, batch = 300;
    class_moments a({f.dim, 10}), b({f.dim, 10}), whole({f.dim, 10});
    moment_accumulator ma({f.dim, target_mode::class_ids, 10});
    for (std::size_t r = 0; r < f.n; r += batch) {
        const std::size_t rows = std::min(batch, f.n - r);
        const batch_view v(f.row(r), rows, f.dim);
        // The halves split inside a batch, at `split`.
        for (std::size_t lo = r; lo < r + rows;) {
            const std::size_t hi = lo < split ? std::min(r + rows, split) : r + rows;
            (lo < split ? a : b).update(batch_view(f.row(lo), hi - lo, f.dim),
                                        target_view::class_ids(f.y.data() + lo, hi - lo), lo);
            lo = hi;
        }
        whole.update(v, target_view::class_ids(f.y.data() + r, rows), r);
        ma.update(v, target_view::class_ids(f.y.data() + r, rows), r);
    }
    a.merge(b);
    CHECK(a.counts() == whole.counts());
    CHECK(testing::rel_diff(a.means(), whole.means()) < 1e-13);
    same_cross(a, ma, 1e-12);
    same_cross(whole, ma, 1e-12);
}

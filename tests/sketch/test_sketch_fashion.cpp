// Both sketches on real data: the first 5000 Fashion-MNIST training images (D = 784),
// against the exact moments; and the alignment curve of each sketch's spectrum against
// the exact curve, up to the sketch's rank.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <recalign/align/alignment.hpp>
#include <recalign/io/datasets.hpp>
#include <recalign/io/idx.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>

#include "../data_sets.hpp"
#include "sketch_helpers.hpp"

using namespace recalign;
using namespace sketch_testing;

namespace {
constexpr std::size_t N = 5000, BATCH = 500;

struct fashion {
    std::vector<std::uint8_t> x;  // N x 784
    std::vector<std::int64_t> y;
    std::size_t d = 0;
};

const fashion& images() {
    static fashion f;
    if (f.x.empty()) {
        const io::fashion_mnist_files files = io::fashion_mnist();
        io::idx_reader xr(files.train_images), yr(files.train_labels);
        f.d = xr.cols();
        io::row_block block;
        REQUIRE(xr.read(N, block) == N);
        REQUIRE(block.type == dtype::u8);
        f.x.assign(block.bytes.begin(), block.bytes.begin() + static_cast<std::ptrdiff_t>(N * f.d));
        REQUIRE(yr.read_labels(N, f.y) == N);
    }
    return f;
}

template <class Acc>
void feed_images(Acc& acc) {
    const fashion& f = images();
    for (std::size_t r = 0; r < N; r += BATCH) acc.update(batch_view(f.x.data() + r * f.d, BATCH, f.d), r);
}

moment_accumulator exact_moments() {
    const fashion& f = images();
    moment_options o;
    o.dim = f.d;
    o.targets = target_mode::class_ids;
    o.classes = 10;
    moment_accumulator m(o);
    for (std::size_t r = 0; r < N; r += BATCH)
        m.update(batch_view(f.x.data() + r * f.d, BATCH, f.d), target_view::class_ids(f.y.data() + r, BATCH), r);
    return m;
}

exact_reference reference(const moment_accumulator& m, centering c) {
    exact_reference r;
    r.c = m.sxx(c);
    r.spec = exact_spectrum(m, c);
    for (double v : r.c) r.frobenius2 += v * v;
    return r;
}
}  // namespace

TEST_CASE("Fashion-MNIST: FD within its bound, Nyström 2-pass clearly better than 1-pass", "[sketch][fashion]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const fashion& f = images();
    const std::size_t d = f.d, k = 20;
    const moment_accumulator m = exact_moments();
    for (centering c : {centering::centered, centering::uncentered}) {
        INFO(centering_name(c));
        const exact_reference ref = reference(m, c);
        const double tol = 1e-10 * ref.spec.eigenvalues(0);

        frequent_directions_options fo;
        fo.dim = d;
        fo.ell = 60;
        fo.center = c;
        frequent_directions fd(fo);
        feed_images(fd);
        const spectrum fs = frequent_directions_spectrum(fd);
        CHECK(fs.total == Approx(ref.spec.total).epsilon(1e-12));
        // ‖C − Ĉ‖₂ <= Δ with Ĉ the whole sketch's BᵀB = U Λ Uᵀ (rank <= ℓ, rows < 2ℓ: ask for all).
        const spectrum full = frequent_directions_spectrum(fd, {2 * fo.ell + 1, 0.0});
        matrix_t diff = ref.c;
        matrix_t ul = full.basis;
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < full.rank(); ++j) ul(i, j) *= full.eigenvalues(j);
        blas::gemm_nt(d, d, full.rank(), -1.0, ul.data(), full.basis.data(), 1.0, diff.data());
        const vector_t ev = eigenvalues(diff);
        CHECK(ev(0) <= fd.shrinkage() + tol);
        CHECK(ev(d - 1) >= -tol);
        CHECK(fd.shrinkage() <= ref.tail_sum(k) / static_cast<double>(fo.ell + 1 - k) + tol);
        INFO("FD Δ / λ_1 = " << fd.shrinkage() / ref.spec.eigenvalues(0)
                             << ", captured-variance error " << captured_error(ref, fs.basis, k));

        nystrom_sketch ny(nystrom_options{d, k, 10, 10, 2024, c});
        feed_images(ny);
        const spectrum one = nystrom_spectrum(ny);
        ny.next_pass();
        feed_images(ny);
        const spectrum two = nystrom_spectrum(ny);
        const double e1 = captured_error(ref, one.basis, k), e2 = captured_error(ref, two.basis, k);
        const double a1 = sin2_max_angle(ref.spec.basis, one.basis, 10), a2 = sin2_max_angle(ref.spec.basis, two.basis, 10);
        INFO("Nyström captured-variance error 1-pass " << e1 << ", 2-pass " << e2 << "; sin² angle (top 10) " << a1
                                                      << ", " << a2);
        CHECK(e2 < 0.5 * e1);
        CHECK(a2 < 0.5 * a1);
        CHECK(e2 < 1e-2);
        for (const spectrum* sp : {&one, &two}) {
            const double truth = frobenius_error(ref, sp->basis, sp->eigenvalues);
            CHECK(sp->error_estimate > 0.5 * truth);
            CHECK(sp->error_estimate < 2.0 * truth);
        }
    }
}

TEST_CASE("Fashion-MNIST: alignment_curve on sketch spectra matches the exact curve up to the sketch's rank",
          "[sketch][fashion]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const fashion& f = images();
    const std::size_t d = f.d, k = 15;
    const moment_accumulator m = exact_moments();
    for (centering c : {centering::uncentered, centering::centered}) {
        INFO(centering_name(c));
        nystrom_sketch ny(nystrom_options{d, k, 15, 0, 7, c});
        feed_images(ny);
        for (int pass = 0; pass < 2; ++pass) {
            ny.next_pass();
            feed_images(ny);
        }
        frequent_directions_options fo;
        fo.dim = d;
        fo.ell = 150;
        fo.center = c;
        frequent_directions fd(fo);
        feed_images(fd);
        const spectrum exact_sp = exact_spectrum(m, c);
        for (const spectrum& sp : {nystrom_spectrum(ny), frequent_directions_spectrum(fd, {k, 1e-12})}) {
            INFO(route_name(sp.method));
            for (alignment_measure measure : {alignment_measure::paper, alignment_measure::fit}) {
                alignment_options ao;
                ao.measure = measure;
                const alignment_result a = alignment_curve(make_statistics(sp, m.mean_x(), m.cross(c)), ao);
                const alignment_result e = alignment_curve(finish(m, c), ao);
                REQUIRE(a.max_k == k);
                REQUIRE(a.curve.size() == k);
                CHECK(a.method == sp.method);
                for (std::size_t i = 0; i < k; ++i) {
                    INFO("k = " << i + 1);
                    CHECK(a.curve(i) == Approx(e.curve(i)).epsilon(0.03).margin(1e-4));
                }
            }
        }
    }
}

// alignment_tracker: one stream = merged shards; checkpoint/resume bit-identical; a bad batch
// leaves the whole state intact; reports carry the change since the previous report.
#include <catch2/catch.hpp>

#include <dirent.h>
#include <unistd.h>

#include <cmath>
#include <limits>
#include <cstring>
#include <sstream>
#include <vector>

#include <recalign/align/tracker.hpp>

#include "../common/helpers.hpp"
#include "../common/temp_dir.hpp"
#include "../data_sets.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

namespace {
tracker_options options_for(std::size_t dim) {
    tracker_options o;
    o.dim = dim;
    o.classes = 10;
    o.shape = {14, 14, 1, image_layout::hwc};
    o.noises = {parse_noise_spec("gaussian:sigma=0.1"), parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=fixed"),
                parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=bernoulli,draws=4,seed=9")};
    return o;
}

void feed(alignment_tracker& t, const testing::fashion_subset& f, std::size_t from, std::size_t to, std::size_t batch) {
    for (std::size_t r0 = from; r0 < to; r0 += batch) {
        const std::size_t b = std::min(batch, to - r0);
        t.update(batch_view(f.row(r0), b, f.dim), target_view::class_ids(f.y.data() + r0, b), r0);
    }
}

// Names in `dir`, and this process's descriptors pointing into it (an unlinked spill file).
std::size_t entries_and_open_files(const std::string& dir) {
    std::size_t n = 0;
    for (const std::string& where : {dir, std::string("/proc/self/fd")}) {
        DIR* d = ::opendir(where.c_str());
        REQUIRE(d != nullptr);
        while (const dirent* e = ::readdir(d)) {
            if (std::strcmp(e->d_name, ".") == 0 || std::strcmp(e->d_name, "..") == 0) continue;
            if (where == dir) {
                ++n;
                continue;
            }
            char target[4096] = {};
            const std::string link = where + "/" + e->d_name;
            const ssize_t len = ::readlink(link.c_str(), target, sizeof target - 1);
            if (len > 0 && std::string(target).rfind(dir + "/", 0) == 0) ++n;
        }
        ::closedir(d);
    }
    return n;
}

double max_abs_diff(const vector_t& a, const vector_t& b) {
    REQUIRE(a.size() == b.size());
    double m = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a(i) - b(i)));
    return m;
}
}  // namespace

TEST_CASE("tracker: merge of shards equals one stream", "[align][tracker]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(900, true);
    alignment_tracker one(options_for(f.dim)), a(options_for(f.dim)), b(options_for(f.dim)), c(options_for(f.dim));
    feed(one, f, 0, 900, 100);
    feed(a, f, 0, 300, 64);
    feed(b, f, 300, 700, 128);
    feed(c, f, 700, 900, 50);
    a.merge(b);
    a.merge(c);
    CHECK(a.n() == 900);
    const tracker_report r1 = one.report(), r2 = a.report();
    CHECK(max_abs_diff(r1.clean.curve, r2.clean.curve) < 1e-10);
    REQUIRE(r1.noises.size() == 3);
    for (std::size_t i = 0; i < 3; ++i) {
        CAPTURE(r1.noises[i].spec);
        CHECK(r1.noises[i].monte_carlo == (i == 2));
        CHECK(max_abs_diff(r1.noises[i].denoising.curve, r2.noises[i].denoising.curve) < 1e-8);
        CHECK(max_abs_diff(r1.noises[i].impact.distance, r2.noises[i].impact.distance) < 1e-6);
    }
    // Monte-Carlo standard error is reported and the MC masking moves the subspace too.
    CHECK(r1.noises[2].g_stderr_fro > 0);
    CHECK(xt::amax(r1.noises[2].impact.normalised)() > 1e-3);
    CHECK(xt::amax(xt::abs(r1.noises[0].impact.distance))() < 1e-8);  // Gaussian: no impact
    // Incompatible trackers refuse to merge, naming the noise lists.
    tracker_options other = options_for(f.dim);
    other.noises.pop_back();
    alignment_tracker d(other);
    feed(d, f, 0, 100, 100);
    const std::string before = testing::saved(one);
    CHECK_THROWS_WITH(one.merge(d), Catch::Contains("draws=4"));
    CHECK(testing::saved(one) == before);
}

TEST_CASE("tracker: checkpoint and resume are bit-identical; reports carry the change", "[align][tracker]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(600, true);
    alignment_tracker straight(options_for(f.dim)), first(options_for(f.dim));
    feed(straight, f, 0, 300, 100);
    const tracker_report early = straight.report();
    CHECK(std::isnan(early.clean_change));
    feed(straight, f, 300, 600, 100);

    feed(first, f, 0, 300, 100);
    const tracker_report early2 = first.report();
    CHECK(max_abs_diff(early.clean.curve, early2.clean.curve) == 0.0);
    const std::string bytes = testing::saved(first);
    alignment_tracker resumed = testing::loaded<alignment_tracker>(bytes);
    CHECK(testing::saved(resumed) == bytes);
    feed(resumed, f, 300, 600, 100);
    CHECK(testing::saved(resumed) == testing::saved(straight));
    const tracker_report late = straight.report(), late2 = resumed.report();
    CHECK(late.reports == 1);
    CHECK(late2.reports == 1);
    CHECK(late.clean_change == late2.clean_change);
    CHECK(late.clean_change > 0);
    CHECK(late.clean_change == Approx(max_abs_diff(late.clean.curve, early.clean.curve)));
    for (std::size_t i = 0; i < 3; ++i) {
        CHECK(late.noises[i].change == late2.noises[i].change);
        CHECK(late.noises[i].change > 0);
        CHECK(max_abs_diff(late.noises[i].denoising.curve, late2.noises[i].denoising.curve) == 0.0);
    }
    // Truncated or corrupted checkpoints throw, never crash.
    for (std::size_t cut : {std::size_t(0), std::size_t(63), std::size_t(100), bytes.size() / 3, bytes.size() - 1}) {
        std::istringstream is(bytes.substr(0, cut), std::ios::binary);
        CHECK_THROWS(alignment_tracker::load(is));
    }
    std::string flipped = bytes;
    flipped[bytes.size() / 2] ^= 0x10;
    std::istringstream is(flipped, std::ios::binary);
    CHECK_THROWS(alignment_tracker::load(is));
}

TEST_CASE("tracker: a bad batch leaves the state intact", "[align][tracker]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(200, true);
    alignment_tracker t(options_for(f.dim));
    feed(t, f, 0, 100, 50);
    const std::string before = testing::saved(t);
    std::vector<double> x(f.row(100), f.row(110));
    std::vector<std::int64_t> y(f.y.begin() + 100, f.y.begin() + 110);
    x[3 * f.dim + 7] = std::nan("");
    CHECK_THROWS_AS(t.update(batch_view(x.data(), 10, f.dim), target_view::class_ids(y.data(), 10)),
                    std::invalid_argument);
    CHECK(testing::saved(t) == before);
    x[3 * f.dim + 7] = 0.5;
    y[4] = 10;  // label out of range
    CHECK_THROWS_AS(t.update(batch_view(x.data(), 10, f.dim), target_view::class_ids(y.data(), 10)),
                    std::invalid_argument);
    CHECK(testing::saved(t) == before);
    y[4] = 1;
    CHECK_THROWS_AS(t.update(batch_view(x.data(), 10, f.dim - 1), target_view::class_ids(y.data(), 10)),
                    std::invalid_argument);
    CHECK_THROWS_AS(t.update(batch_view(x.data(), 10, f.dim), target_view::class_ids(y.data(), 9)),
                    std::invalid_argument);
    CHECK(testing::saved(t) == before);
    t.update(batch_view(x.data(), 10, f.dim), target_view::class_ids(y.data(), 10));
    CHECK(t.n() == 110);
}

TEST_CASE("tracker: configuration errors", "[align][tracker]") {
    tracker_options o = options_for(196);
    o.shape = {};
    CHECK_THROWS_AS(alignment_tracker(o), std::invalid_argument);  // mask without a shape
    o = options_for(196);
    o.center = centering::centered;
    CHECK_THROWS_AS(alignment_tracker(o), std::invalid_argument);  // Monte Carlo needs uncentered
    o = options_for(100);
    CHECK_THROWS_AS(alignment_tracker(o), std::invalid_argument);  // shape vs dim
    o = options_for(196);
    o.noises = {parse_noise_spec("mask:patch=14x14,ratio=0.5,scheme=fixed")};  // keeps floor(1 * 0.5) = 0
    CHECK_THROWS_AS(alignment_tracker(o), std::invalid_argument);
}

// The same masking V* and clean decomposition (the same products on the same Sxx); the denoising
// curve's Gram matrix V*ᵀ Sxx V* is taken through U Λ Uᵀ once Sxx is decomposed in its storage.
TEST_CASE("tracker: the final report (accumulator consumed) is report()'s", "[align][tracker]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(300, true);
    for (bool raw_targets : {false, true}) {
        tracker_options o = options_for(f.dim);
        o.center = raw_targets ? centering::centered : centering::uncentered;
        o.raw_targets = raw_targets;
        if (raw_targets) o.noises.pop_back();  // Monte-Carlo expectations are uncentered sums
        alignment_tracker t(o);
        feed(t, f, 0, 300, 64);
        alignment_tracker consumed = t;
        const tracker_report a = t.report(), b = std::move(consumed).final_report();
        CAPTURE(raw_targets);
        CHECK(b.n == a.n);
        CHECK(max_abs_diff(a.clean.curve, b.clean.curve) == 0.0);
        REQUIRE(a.noises.size() == b.noises.size());
        for (std::size_t i = 0; i < a.noises.size(); ++i) {
            CHECK(max_abs_diff(a.noises[i].denoising.curve, b.noises[i].denoising.curve) < 1e-10);
            CHECK(max_abs_diff(a.noises[i].impact.distance, b.noises[i].impact.distance) == 0.0);
            CHECK(max_abs_diff(a.noises[i].denoising.subspace.eigenvalues, b.noises[i].denoising.subspace.eigenvalues) == 0.0);
            CHECK(b.noises[i].denoising.subspace.basis.size() == 0);  // measured, then released
            CHECK(b.noises[i].monte_carlo == a.noises[i].monte_carlo);
            CHECK(b.noises[i].g_stderr_fro == a.noises[i].g_stderr_fro);
        }
    }
}

// With a spill directory the matrices a decomposition does not read wait there (Sxx while dsyevd
// decomposes C or a Monte-Carlo noise is solved, each V* until the clean eigenvectors exist):
// the same bits as in memory, with dsyevd (Sxx parked) and with dsyevr (only the V*), and
// nothing left in the directory or open afterwards; a directory that is not there is named.
TEST_CASE("tracker: the final report with its idle matrices on disk is the in-memory one", "[align][tracker][spill]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::fashion_subset f = testing::load_fashion(300, true);
    testing::temp_dir dir("recalign-tracker-spill");
    tracker_options o = options_for(f.dim);
    o.noises.push_back(parse_noise_spec("dropout:ratio=0.3"));
    alignment_tracker t(o);
    feed(t, f, 0, 300, 64);
    for (std::uint64_t workspace : {std::numeric_limits<std::uint64_t>::max(), std::uint64_t{0}}) {
        eigen_options solver;
        solver.workspace_bytes = workspace;  // dsyevd everywhere, or dsyevr (C's top n pairs)
        alignment_tracker in_memory = t, on_disk = t;
        const tracker_report a = std::move(in_memory).final_report(solver);
        const tracker_report b = std::move(on_disk).final_report(solver, dir.path);
        CAPTURE(workspace);
        CHECK(entries_and_open_files(dir.path) == 0);
        CHECK(max_abs_diff(a.clean.curve, b.clean.curve) == 0.0);
        REQUIRE(a.noises.size() == b.noises.size());
        for (std::size_t i = 0; i < a.noises.size(); ++i) {
            CAPTURE(a.noises[i].spec);
            CHECK(max_abs_diff(a.noises[i].denoising.curve, b.noises[i].denoising.curve) == 0.0);
            CHECK(max_abs_diff(a.noises[i].impact.distance, b.noises[i].impact.distance) == 0.0);
            CHECK(max_abs_diff(a.noises[i].denoising.subspace.eigenvalues, b.noises[i].denoising.subspace.eigenvalues) ==
                  0.0);
            CHECK(b.noises[i].monte_carlo == a.noises[i].monte_carlo);
            CHECK(b.noises[i].bs_stderr_fro == a.noises[i].bs_stderr_fro);
            CHECK(b.noises[i].g_stderr_fro == a.noises[i].g_stderr_fro);
        }
    }
    // The consuming Monte-Carlo estimate is estimate()'s, bit for bit.
    alignment_tracker consumed = t;
    const tracker_report r = t.report(), c = std::move(consumed).final_report({}, dir.path);
    CHECK(c.noises[2].monte_carlo);
    CHECK(c.noises[2].bs_stderr_fro == r.noises[2].bs_stderr_fro);
    CHECK(c.noises[2].g_stderr_fro == r.noises[2].g_stderr_fro);
    CHECK(max_abs_diff(c.noises[2].denoising.subspace.eigenvalues, r.noises[2].denoising.subspace.eigenvalues) == 0.0);
    alignment_tracker missing = t;
    CHECK_THROWS_WITH(std::move(missing).final_report({}, dir.path + "/missing"), Catch::Contains(dir.path + "/missing"));
    CHECK(entries_and_open_files(dir.path) == 0);
}

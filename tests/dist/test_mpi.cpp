// dist/mpi.hpp under mpirun (run by run_mpi.py with 1, 2 and 3 ranks, twice each):
// every reduction equals the single-process result (moments, Nyström, tracker statistics to
// 1e-12 relative; Frequent Directions bit for bit against the same merge tree run in one
// process), is identical on every rank for all_reduce, and disagreeing ranks are refused
// with the same message on every rank. With --dump FILE, rank 0 writes a hash of every
// reduced state's bytes, so that the driver can check two runs with the same rank count
// give the same bits.
//
// Only CHECK (never REQUIRE) after the first collective: a failed assertion must not make
// one rank skip a collective that the others enter.
#include <catch2/catch.hpp>  // the implementation: tests/catch_session.cpp

#include <cmath>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include <recalign/core/hash.hpp>
#include <recalign/dist/mpi.hpp>

#include "../catch_session.hpp"
#include "../common/fashion.hpp"

using namespace recalign;

namespace {

std::string g_dump_path;
std::vector<std::pair<std::string, std::uint64_t>> g_dump;

int world_rank() { return dist::rank_of(MPI_COMM_WORLD); }
int world_size() { return dist::size_of(MPI_COMM_WORLD); }

template <class T>
std::string bytes_of(const T& t) {
    std::ostringstream os(std::ios::binary);
    t.save(os);
    return os.str();
}

std::uint64_t hash_of(const std::string& s) { return fnv1a().add_bytes(s.data(), s.size()).value(); }

// All ranks hold the same bytes?
bool same_on_all_ranks(const std::string& s) {
    const std::uint64_t h = hash_of(s);
    std::vector<std::uint64_t> all(static_cast<std::size_t>(world_size()));
    MPI_Allgather(&h, 1, MPI_UINT64_T, all.data(), 1, MPI_UINT64_T, MPI_COMM_WORLD);
    for (std::uint64_t v : all)
        if (v != h) return false;
    return true;
}

double rel_diff(const matrix_t& a, const matrix_t& b) {
    if (a.shape() != b.shape()) return 1e300;
    double num = 0.0, den = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(a.data()[i] - b.data()[i]));
        den = std::max(den, std::abs(b.data()[i]));
    }
    return den > 0 ? num / den : num;
}

double rel_diff(const vector_t& a, const vector_t& b) {
    if (a.size() != b.size()) return 1e300;
    double num = 0.0, den = 0.0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num = std::max(num, std::abs(a(i) - b(i)));
        den = std::max(den, std::abs(b(i)));
    }
    return den > 0 ? num / den : num;
}

// The rows rank r of R reads: whole batches, contiguous, as the CLI shards a file.
std::pair<std::size_t, std::size_t> shard(std::size_t rows, std::size_t batch, int r, int size) {
    const std::size_t batches = (rows + batch - 1) / batch;
    const std::size_t lo = batches * static_cast<std::size_t>(r) / static_cast<std::size_t>(size);
    const std::size_t hi = batches * static_cast<std::size_t>(r + 1) / static_cast<std::size_t>(size);
    return {std::min(rows, lo * batch), std::min(rows, hi * batch)};
}

const testing::fashion_subset& data() {
    static const testing::fashion_subset f = testing::load_fashion(1500, true);
    return f;
}

constexpr std::size_t rows_per_batch = 100;

template <class F>
void feed(const testing::fashion_subset& f, std::size_t from, std::size_t to, F&& update) {
    for (std::size_t r0 = from; r0 < to; r0 += rows_per_batch) {
        const std::size_t b = std::min(rows_per_batch, to - r0);
        update(batch_view(f.row(r0), b, f.dim), target_view::class_ids(f.y.data() + r0, b), r0);
    }
}

moment_accumulator moments_over(const testing::fashion_subset& f, std::size_t from, std::size_t to, double offset) {
    moment_options o;
    o.dim = f.dim;
    o.targets = target_mode::class_ids;
    o.classes = 10;
    moment_accumulator m(o);
    std::vector<double> shifted;
    feed(f, from, to, [&](const batch_view& x, const target_view& y, std::size_t r0) {
        shifted.assign(static_cast<const double*>(x.data), static_cast<const double*>(x.data) + x.rows * x.cols);
        for (double& v : shifted) v += offset;
        m.update(batch_view(shifted.data(), x.rows, x.cols), y, r0);
    });
    return m;
}

void check_moments_equal(const moment_accumulator& got, const moment_accumulator& want) {
    CHECK(got.n() == want.n());
    CHECK(rel_diff(got.mean_x(), want.mean_x()) < 1e-12);
    CHECK(rel_diff(got.mean_y(), want.mean_y()) < 1e-12);
    for (centering c : {centering::centered, centering::uncentered}) {
        CAPTURE(centering_name(c));
        const double dxx = rel_diff(got.sxx(c), want.sxx(c)), dxy = rel_diff(got.sxy(c), want.sxy(c)),
                     dyy = rel_diff(got.syy(c), want.syy(c));
        CAPTURE(dxx, dxy, dyy);
        CHECK(dxx < 1e-12);
        CHECK(dxy < 1e-12);
        CHECK(dyy < 1e-12);
    }
}

}  // namespace

TEST_CASE("moments: all_reduce of shards equals one pass, on every rank, bit-identical", "[dist][moments]") {
    const auto& f = data();
    const int me = world_rank(), size = world_size();
    // An offset of 1e3 makes raw-moment subtraction lose ~12 digits; the two-stage merge must not.
    for (double offset : {0.0, 1e3}) {
        CAPTURE(offset);
        const moment_accumulator whole = moments_over(f, 0, f.n, offset);
        const auto [lo, hi] = shard(f.n, rows_per_batch, me, size);
        const moment_accumulator local = moments_over(f, lo, hi, offset);
        const moment_accumulator merged = dist::all_reduce(local, MPI_COMM_WORLD);
        check_moments_equal(merged, whole);
        const std::string bytes = bytes_of(merged);
        CHECK(same_on_all_ranks(bytes));
        // Same rank count, same bits: again in this run (and across runs via --dump).
        CHECK(bytes_of(dist::all_reduce(local, MPI_COMM_WORLD)) == bytes);
        // The local state is untouched.
        CHECK(bytes_of(local) == bytes_of(moments_over(f, lo, hi, offset)));
        g_dump.push_back({"moments offset " + std::to_string(offset), hash_of(bytes)});
    }
}

TEST_CASE("moments: reduce to any root, uneven shards and empty ranks", "[dist][moments]") {
    const auto& f = data();
    const int me = world_rank(), size = world_size();
    // The last rank gets nothing, rank 0 a single batch, the rest split the remainder.
    std::size_t lo = 0, hi = 0;
    if (size == 1) {
        hi = f.n;
    } else if (me == 0) {
        hi = rows_per_batch;
    } else if (me < size - 1) {
        const auto s = shard(f.n - rows_per_batch, rows_per_batch, me - 1, size - 2);
        lo = rows_per_batch + s.first;
        hi = rows_per_batch + s.second;
    } else if (size == 2) {
        lo = rows_per_batch;
        hi = f.n;
    }
    const moment_accumulator whole = moments_over(f, 0, f.n, 0.0);
    const moment_accumulator local = moments_over(f, lo, hi, 0.0);
    for (int root = 0; root < size; ++root) {
        CAPTURE(root);
        std::optional<moment_accumulator> r = dist::reduce(local, MPI_COMM_WORLD, root);
        CHECK(r.has_value() == (me == root));
        if (r) check_moments_equal(*r, whole);
    }
    // Nobody has data: an empty result, not a division by zero.
    moment_options o = local.options();
    std::optional<moment_accumulator> none = dist::reduce(moment_accumulator(o), MPI_COMM_WORLD, 0);
    if (me == 0) {
        CHECK(none.has_value());
        if (none) CHECK(none->empty());
    }
}

TEST_CASE("frequent directions: the reduction is the fixed merge tree", "[dist][fd]") {
    const auto& f = data();
    const int me = world_rank(), size = world_size();
    frequent_directions_options o;
    o.dim = f.dim;
    o.ell = 20;
    auto sketch_of = [&](int r) {
        frequent_directions fd(o);
        const auto [lo, hi] = shard(f.n, rows_per_batch, r, size);
        feed(f, lo, hi, [&](const batch_view& x, const target_view&, std::size_t r0) { fd.update(x, r0); });
        return fd;
    };
    // The same tree in one process: at step s, position v (v mod 2s = 0) merges in v + s.
    std::vector<frequent_directions> all;
    for (int r = 0; r < size; ++r) all.push_back(sketch_of(r));
    for (int step = 1; step < size; step <<= 1)
        for (int v = 0; v + step < size; v += 2 * step) all[static_cast<std::size_t>(v)].merge(all[v + step]);
    const frequent_directions merged = dist::all_reduce(sketch_of(me), MPI_COMM_WORLD);
    const std::string bytes = bytes_of(merged);
    CHECK(bytes == bytes_of(all[0]));
    CHECK(same_on_all_ranks(bytes));
    CHECK(merged.n() == f.n);
    // Exact parts against one pass: n, mean and trace.
    frequent_directions one(o);
    feed(f, 0, f.n, [&](const batch_view& x, const target_view&, std::size_t r0) { one.update(x, r0); });
    CHECK(rel_diff(merged.mean(), one.mean()) < 1e-12);
    CHECK(std::abs(merged.trace() - one.trace()) <= 1e-12 * std::abs(one.trace()));
    // The guarantee carries over: λ_1(C − BᵀB) ≤ Δ, checked through the Rayleigh quotient of the
    // top direction of C − BᵀB estimated by power iteration.
    const moment_accumulator exact = moments_over(f, 0, f.n, 0.0);
    matrix_t diff = exact.sxx(centering::centered);
    const matrix_t b = merged.sketch();
    for (std::size_t i = 0; i < f.dim; ++i)
        for (std::size_t j = 0; j < f.dim; ++j)
            for (std::size_t k = 0; k < b.shape(0); ++k) diff(i, j) -= b(k, i) * b(k, j);
    std::vector<double> v(f.dim, 1.0), w(f.dim);
    double lambda = 0.0;
    for (int it = 0; it < 200; ++it) {
        double norm = 0.0;
        for (std::size_t i = 0; i < f.dim; ++i) {
            w[i] = 0.0;
            for (std::size_t j = 0; j < f.dim; ++j) w[i] += diff(i, j) * v[j];
            norm += w[i] * w[i];
        }
        norm = std::sqrt(norm);
        lambda = norm;
        for (std::size_t i = 0; i < f.dim; ++i) v[i] = w[i] / norm;
    }
    CAPTURE(lambda, merged.shrinkage());
    CHECK(lambda <= merged.shrinkage() * (1 + 1e-9));
    g_dump.push_back({"fd", hash_of(bytes)});
}

TEST_CASE("nystrom: the reduction is the sum of the shards' ranges; a different seed is refused", "[dist][nystrom]") {
    const auto& f = data();
    const int me = world_rank(), size = world_size();
    nystrom_options o;
    o.dim = f.dim;
    o.rank = 10;
    o.oversampling = 5;
    o.probes = 4;
    o.seed = 1234;
    auto sketch_over = [&](const nystrom_options& opt, std::size_t lo, std::size_t hi) {
        nystrom_sketch s(opt);
        feed(f, lo, hi, [&](const batch_view& x, const target_view&, std::size_t r0) { s.update(x, r0); });
        return s;
    };
    const auto [lo, hi] = shard(f.n, rows_per_batch, me, size);
    const nystrom_sketch one = sketch_over(o, 0, f.n);
    const nystrom_sketch merged = dist::all_reduce(sketch_over(o, lo, hi), MPI_COMM_WORLD);
    CHECK(merged.n() == one.n());
    CHECK(rel_diff(merged.centered_range(), one.centered_range()) < 1e-12);
    CHECK(rel_diff(merged.range(), one.range()) < 1e-12);
    CHECK(rel_diff(merged.mean(), one.mean()) < 1e-12);
    const std::string bytes = bytes_of(merged);
    CHECK(same_on_all_ranks(bytes));
    g_dump.push_back({"nystrom", hash_of(bytes)});

    // Two passes: all_reduce gives every rank the same bytes, so next_pass() builds the same
    // basis Q everywhere, and the second pass is sharded and reduced like the first.
    {
        nystrom_sketch pass1 = dist::all_reduce(sketch_over(o, lo, hi), MPI_COMM_WORLD);
        pass1.next_pass();
        nystrom_sketch reference = one;
        reference.next_pass();
        feed(f, lo, hi, [&](const batch_view& x, const target_view&, std::size_t r0) { pass1.update(x, r0); });
        feed(f, 0, f.n, [&](const batch_view& x, const target_view&, std::size_t r0) { reference.update(x, r0); });
        const nystrom_sketch pass2 = dist::all_reduce(pass1, MPI_COMM_WORLD);
        CHECK(pass2.pass() == 1);
        CHECK(same_on_all_ranks(bytes_of(pass2)));
        // Q is a function of the pass-1 range, equal to 1e-12; its rounding difference is
        // amplified by the reconstruction's conditioning, hence the looser check of pass 2.
        CHECK(rel_diff(pass2.test_matrix(), reference.test_matrix()) < 1e-9);
        const spectrum a = nystrom_spectrum(pass2), b = nystrom_spectrum(reference);
        CHECK(rel_diff(a.eigenvalues, b.eigenvalues) < 1e-10);
    }

    if (size > 1) {
        nystrom_options bad = o;
        if (me == 1) bad.seed = 99;
        const nystrom_sketch s = sketch_over(bad, lo, hi);
        CHECK_THROWS_AS(dist::reduce(s, MPI_COMM_WORLD, 0), dist::rank_disagreement);
        CHECK_THROWS_WITH(dist::all_reduce(s, MPI_COMM_WORLD),
                          Catch::Contains("seed ('1234' on rank") && Catch::Contains("'99' on rank 1"));
    }
}

TEST_CASE("tracker: reduced as a whole equals one stream", "[dist][tracker]") {
    const auto& f = data();
    const int me = world_rank(), size = world_size();
    tracker_options o;
    o.dim = f.dim;
    o.classes = 10;
    o.shape = {14, 14, 1, image_layout::hwc};
    o.noises = {parse_noise_spec("gaussian:sigma=0.1"),
                parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=bernoulli,draws=2,seed=9")};
    auto tracker_over = [&](const tracker_options& opt, std::size_t lo, std::size_t hi) {
        alignment_tracker t(opt);
        feed(f, lo, hi, [&](const batch_view& x, const target_view& y, std::size_t r0) { t.update(x, y, r0); });
        return t;
    };
    const auto [lo, hi] = shard(f.n, rows_per_batch, me, size);
    alignment_tracker one = tracker_over(o, 0, f.n);
    alignment_tracker merged = dist::all_reduce(tracker_over(o, lo, hi), MPI_COMM_WORLD);
    check_moments_equal(merged.moments(), one.moments());
    for (std::size_t i = 0; i < o.noises.size(); ++i) {
        CAPTURE(i);
        const noise_moments a = merged.noise_expectations(i), b = one.noise_expectations(i);
        CHECK(a.n == b.n);
        CHECK(rel_diff(a.bs, b.bs) < 1e-12);
        CHECK(rel_diff(a.g, b.g) < 1e-12);
    }
    const std::string bytes = bytes_of(merged);
    CHECK(same_on_all_ranks(bytes));
    g_dump.push_back({"tracker", hash_of(bytes)});
    const tracker_report r1 = merged.report(), r2 = one.report();
    CHECK(rel_diff(r1.clean.curve, r2.clean.curve) < 1e-10);

    if (size > 1) {
        tracker_options bad = o;
        if (me == size - 1) bad.noises[0] = parse_noise_spec("gaussian:sigma=0.2");
        const alignment_tracker t = tracker_over(bad, lo, hi);
        CHECK_THROWS_WITH(dist::reduce(t, MPI_COMM_WORLD, 0),
                          Catch::Contains("noise models") && Catch::Contains("sigma=0.2") &&
                              Catch::Contains("on rank " + std::to_string(size - 1) + ")"));
    }
}

TEST_CASE("disagreement: every rank refuses with the same message naming ranks and values", "[dist][agreement]") {
    const int me = world_rank(), size = world_size();
    moment_options o;
    o.dim = (size > 1 && me == 1) ? 5 : 4;
    const moment_accumulator m(o);
    if (size == 1) {
        CHECK_NOTHROW(dist::reduce(m, MPI_COMM_WORLD, 0));
        return;
    }
    std::string message;
    try {
        dist::all_reduce(m, MPI_COMM_WORLD);
    } catch (const dist::rank_disagreement& e) {
        message = e.what();
    }
    CAPTURE(message);
    CHECK_THAT(message, Catch::Contains("dimension ('4' on rank") && Catch::Contains("'5' on rank 1"));
    CHECK(same_on_all_ranks(message));
    // Generic fields (the CLI's fingerprints go through the same check).
    std::vector<dist::config_field> fields = {{"images", me == 0 ? "a.npy" : "b.npy"}, {"batch", "100"}};
    std::string others = size > 2 ? "s 1" : " 1";
    for (int r = 2; r < size; ++r) others += ", " + std::to_string(r);
    CHECK_THROWS_WITH(dist::require_agreement(MPI_COMM_WORLD, fields, "run"),
                      Catch::Equals("run: ranks disagree on images ('a.npy' on rank 0; 'b.npy' on rank" + others + ")"));
    fields[0].value = "same";
    CHECK_NOTHROW(dist::require_agreement(MPI_COMM_WORLD, fields, "run"));
}

TEST_CASE("tree_reduce_bytes: the merge order is the fixed binary tree, for any root", "[dist][tree]") {
    const int me = world_rank(), size = world_size();
    // Merging "(a b)" records the order; the expected string is the tree built in one process.
    auto merge = [](const std::string& lower, const std::string& upper) { return "(" + lower + " " + upper + ")"; };
    for (int root = 0; root < size; ++root) {
        std::vector<std::string> expect;
        for (int v = 0; v < size; ++v) expect.push_back(std::to_string((v + root) % size));
        for (int step = 1; step < size; step <<= 1)
            for (int v = 0; v + step < size; v += 2 * step) expect[v] = merge(expect[v], expect[v + step]);
        const std::optional<std::string> got = dist::tree_reduce_bytes(MPI_COMM_WORLD, std::to_string(me), merge, root);
        CAPTURE(root);
        CHECK(got.has_value() == (me == root));
        if (got) CHECK(*got == expect[0]);
        // And the broadcast of the result reaches every rank unchanged.
        CHECK(dist::broadcast_bytes(MPI_COMM_WORLD, got ? *got : std::string(), root) == expect[0]);
    }
}

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    std::vector<char*> args;
    for (int i = 0; i < argc; ++i) {
        if (std::string(argv[i]) == "--dump" && i + 1 < argc) {
            g_dump_path = argv[++i];
            continue;
        }
        args.push_back(argv[i]);
    }
    int failed = testing::run_catch_session(static_cast<int>(args.size()), args.data());
    int any_failed = 0;
    MPI_Allreduce(&failed, &any_failed, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    if (world_rank() == 0 && !g_dump_path.empty()) {
        std::ofstream out(g_dump_path);
        for (const auto& [name, h] : g_dump) out << name << ' ' << std::hex << h << std::dec << '\n';
    }
    MPI_Finalize();
    return any_failed ? 1 : 0;
}

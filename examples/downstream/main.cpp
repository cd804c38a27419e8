// A downstream program: compiled against an installed recalign (pkg-config), it streams a
// small synthetic data set in two shards, merges them through checkpoint bytes and prints the
// alignment curve. Exit status 0 only if the numbers come out consistent, so that the install
// test (tests/install) fails on a broken install rather than on a missing printout.
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <sstream>
#include <vector>

#include <recalign/recalign.hpp>

int main() try {
    using namespace recalign;
    constexpr std::size_t rows = 400, dim = 6, classes = 3;
    std::vector<double> x(rows * dim);
    std::vector<std::int64_t> y(rows);
    for (std::size_t i = 0; i < rows; ++i) {
        y[i] = static_cast<std::int64_t>(i % classes);
        for (std::size_t j = 0; j < dim; ++j)  // the class moves the last column only
            x[i * dim + j] = std::sin(0.37 * double(i * dim + j)) + (j + 1 == dim ? 2.0 * double(y[i]) : 0.0);
    }
    const moment_options options{dim, target_mode::class_ids, classes};
    moment_accumulator first(options), second(options);
    const std::size_t half = rows / 2;
    first.update(batch_view(x.data(), half, dim), target_view::class_ids(y.data(), half));
    second.update(batch_view(x.data() + half * dim, rows - half, dim),
                  target_view::class_ids(y.data() + half, rows - half), half);
    std::stringstream bytes;  // the checkpoint format, through the installed library
    second.save(bytes);
    first.merge(moment_accumulator::load(bytes));

    const statistics s = finish(first, centering::uncentered);
    const alignment_result a = alignment_curve(s, alignment_options{});
    std::printf("n = %llu, D = %zu, C = %zu\nk  alignment\n", (unsigned long long)a.n, a.dim, a.classes);
    for (std::size_t k = 1; k <= a.max_k; ++k) std::printf("%zu  %.6f\n", k, a.curve(k - 1));
    const bool ok = a.n == rows && a.max_k == dim && std::isfinite(a.curve(dim - 1)) && a.curve(dim - 1) > 0.0;
    if (!ok) std::fprintf(stderr, "downstream: inconsistent result\n");
    return ok ? 0 : 1;
} catch (const std::exception& e) {
    std::fprintf(stderr, "downstream: %s\n", e.what());
    return 1;
}

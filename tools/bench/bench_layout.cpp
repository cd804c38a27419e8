// The library's memory-layout helpers at the shapes the runs give them, timed in the library
// this process loads: blas::symmetrize_from_upper (one symmetric half copied over the other:
// the 224x224x3 demo's 196 patch blocks of 768, the exact route's D x D at D = 4,096 and
// 12,288, and n = 1,000 for a size that is not a multiple of 256) and fix_signs (a D x k basis
// at D = 150,528). Medians of 5. Run it against two builds' libraries, alternating
// (docs/benchmarks-log.md, the forty-second session):
//   LD_LIBRARY_PATH=OLD/lib OPENBLAS_NUM_THREADS=1 build/tools/bench/bench_layout
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <vector>

#include <recalign/core/blas.hpp>
#include <recalign/spectral/eigen.hpp>

using namespace recalign;

namespace {
template <class F>
double median_seconds(F f) {
    std::vector<double> t;
    for (int r = 0; r < 5; ++r) {
        const auto s = std::chrono::steady_clock::now();
        f();
        t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - s).count());
    }
    std::sort(t.begin(), t.end());
    return t[2];
}
}  // namespace

int main() {
    for (std::size_t n : {768ul, 1000ul, 4096ul, 12288ul}) {
        std::vector<double> a(n * n);
        for (std::size_t i = 0; i < n * n; ++i) a[i] = static_cast<double>(i % 977);
        const std::size_t reps = n == 768 ? 196 : 1;
        std::printf("symmetrize_from_upper n %5zu x %3zu: %.4f s\n", n, reps, median_seconds([&] {
                        for (std::size_t r = 0; r < reps; ++r) blas::symmetrize_from_upper(n, a.data());
                    }));
    }
    for (std::size_t k : {100ul, 256ul}) {
        matrix_t v = xt::zeros<double>({150528ul, k});
        for (std::size_t i = 0; i < v.size(); ++i) v.data()[i] = std::sin(0.37 * static_cast<double>(i));
        std::printf("fix_signs 150528 x %3zu: %.4f s\n", k, median_seconds([&] { fix_signs(v); }));
    }
}

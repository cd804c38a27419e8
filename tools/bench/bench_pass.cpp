// The verification pass's update at the 224 demo's width, with and without its second thread
// (each of two threads converting half of the column blocks and running their GEMMs, OpenBLAS
// on one thread; without it the halves run one after the other), side by side in one process (alternating, so machine noise hits both sides alike): wall and CPU
// seconds (user + system of the whole process, so BLAS threads spinning count) per batch of
// uint8 rows, for restricted_moments (a refinement pass's T: K = 128; the first pass: K = 896),
// and patch_blocks's update (the sketch pass's 16 x 16 blocks, split by whole blocks the same
// way). Both sides give the same bits (tests/align/test_restricted_moments.cpp,
// test_patch_blocks.cpp); this measures only the time.
//
// Usage: bench_pass [K] [rows] [repeats]     (defaults 128 1000 3; D = 224 x 224 x 3)
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include <recalign/align/patch_blocks.hpp>
#include <recalign/align/restricted_moments.hpp>

#include "second_thread.hpp"

using namespace recalign;

namespace {
double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_utime.tv_sec + u.ru_stime.tv_sec + 1e-6 * (u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}
double wall_seconds() {
    return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
}  // namespace

int main(int argc, char** argv) {
    const std::size_t k = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 128;
    const std::size_t rows = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 1000;
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
    const image_shape shape{224, 224, 3, image_layout::hwc};
    const std::size_t d = shape.dim();
    std::mt19937_64 g(1);
    std::vector<std::uint8_t> x(rows * d);
    for (auto& v : x) v = static_cast<std::uint8_t>(g() >> 56);
    matrix_t basis = xt::zeros<double>({d, k});
    std::normal_distribution<double> nd;
    for (double& v : basis) v = nd(g);
    batch_view b(x.data(), rows, d);
    b.scale = 1.0 / 255.0;
    std::printf("D = %zu, K = %zu, %zu rows a batch, %d repeats (medians); load: ", d, k, rows, repeats);
    std::fflush(stdout);
    std::system("cat /proc/loadavg");
    std::printf("%-26s %13s %13s %13s %13s\n", "update (one batch)", "wall 1 thr", "wall 2 thr", "cpu 1 thr", "cpu 2 thr");
    for (int which = 0; which < 2; ++which) {
        std::vector<double> w[2], c[2];
        for (int rep = 0; rep < repeats; ++rep) {
            for (int two = 0; two < 2; ++two) {
                detail::second_thread::allow(two == 1);
                double t0 = 0, c0 = 0;
                if (which == 0) {
                    restricted_moments_options o;
                    o.basis = basis;
                    restricted_moments r(o);
                    r.update(b, 0);  // the first batch (its shift is the batch's first row)
                    t0 = wall_seconds(), c0 = cpu_seconds();
                    r.update(b, rows);
                } else {
                    patch_blocks_options o;
                    o.shape = shape;
                    o.patch_h = o.patch_w = 16;
                    patch_blocks p(o);
                    p.update(b, 0);
                    t0 = wall_seconds(), c0 = cpu_seconds();
                    p.update(b, rows);
                }
                w[two].push_back(wall_seconds() - t0);
                c[two].push_back(cpu_seconds() - c0);
            }
        }
        detail::second_thread::allow(true);
        auto med = [](std::vector<double> v) {
            std::sort(v.begin(), v.end());
            return v[v.size() / 2];
        };
        std::printf("%-26s %13.3f %13.3f %13.3f %13.3f\n",
                    which == 0 ? ("restricted_moments K=" + std::to_string(k)).c_str() : "patch_blocks 16x16",
                    med(w[0]), med(w[1]), med(c[0]), med(c[1]));
    }
    return 0;
}

// Time of one distributed reduction, to calibrate the communication estimate in
// docs/benchmarks-log.md ("MPI"): every rank fills a moment accumulator of dimension D (and an FD
// sketch of ℓ rows), then dist::reduce runs `repeats` times; rank 0 prints the bytes each
// tree edge carries and the median time.
//   mpirun -n 2 build/tools/bench/bench_mpi_reduce D [ELL [REPEATS]]
#include <algorithm>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <recalign/dist/mpi.hpp>

using namespace recalign;

namespace {
double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double cpu_now() {
    timespec t{};
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
    return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

double g_cpu = 0.0;  // CPU seconds of the last timed call on this rank (the machine is shared)

template <class F>
double seconds(F&& f) {
    MPI_Barrier(MPI_COMM_WORLD);
    const auto t0 = std::chrono::steady_clock::now();
    const double c0 = cpu_now();
    f();
    g_cpu = cpu_now() - c0;
    MPI_Barrier(MPI_COMM_WORLD);
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
    MPI_Init(&argc, &argv);
    const std::size_t d = argc > 1 ? std::strtoull(argv[1], nullptr, 10) : 2048;
    const std::size_t ell = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 128;
    const int repeats = argc > 3 ? std::atoi(argv[3]) : 3;
    const int rank = dist::rank_of(MPI_COMM_WORLD), size = dist::size_of(MPI_COMM_WORLD);
    const std::size_t rows = 2 * ell;
    std::vector<double> x(rows * d);
    // Deterministic data (any values do; only the sizes matter here).
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 2654435761u + rank * 97u) % 1000) / 1000.0;
    moment_options mo;
    mo.dim = d;
    moment_accumulator m(mo);
    m.update(batch_view(x.data(), rows, d));
    frequent_directions_options fo;
    fo.dim = d;
    fo.ell = ell;
    frequent_directions fd(fo);
    fd.update(batch_view(x.data(), rows, d));
    std::vector<double> tm, tf, cm, cf;
    for (int i = 0; i < repeats; ++i) {
        tm.push_back(seconds([&] { (void)dist::reduce(m, MPI_COMM_WORLD, 0); }));
        cm.push_back(g_cpu);
        tf.push_back(seconds([&] { (void)dist::reduce(fd, MPI_COMM_WORLD, 0); }));
        cf.push_back(g_cpu);
    }
    if (rank == 0) {
        const double packed = static_cast<double>(d) * (d + 1) / 2 * 8, fd_bytes = static_cast<double>(fd.rows()) * d * 8;
        std::printf("ranks %d, D = %zu: exact moments reduce %.3f s wall, %.3f s cpu on rank 0 (medians of %d; "
                    "%.1f MB packed scatter per tree edge)\n",
                    size, d, median(tm), median(cm), repeats, packed / 1e6);
        std::printf("ranks %d, D = %zu: FD (l = %zu, %zu rows held) reduce %.3f s wall, %.3f s cpu on rank 0 "
                    "(%.1f MB per tree edge, the rest is the merge's shrink)\n",
                    size, d, ell, fd.rows(), median(tf), median(cf), fd_bytes / 1e6);
    }
    MPI_Finalize();
    return 0;
}

// Writing a spill file of the 224x224x3 refinement's size (D = 150,528 rows of 1,183 doubles,
// 1.42 GB, the carried [Sxx R, Sxx T] complete_pass writes, by its blocks of 512 rows) into a
// new file and over a kept one (io/spill.hpp), side by side in one run: each round drops the
// kept files and waits, writes a new file, drops it (kept: another file lives), waits as long,
// then writes a file of the same size, which takes the kept one. The wait stands for the
// refinement pass between two such files (about a minute in the demo): on a VM whose balloon
// reports freed pages to the host (virtio free page reporting, after about 2 s), a new file's
// pages are then new to the host as well.
//   bench_spill [rounds=4] [wait seconds=5] [dir=$TMPDIR or /tmp]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <recalign/io/spill.hpp>

using recalign::io::row_spill;

namespace {
constexpr std::size_t rows = 150528, cols = 1183, block = 512;

double write_all(row_spill& f, const std::vector<double>& buffer) {
    const auto t0 = std::chrono::steady_clock::now();
    for (std::size_t r0 = 0; r0 < rows; r0 += block) f.write_rows(r0, std::min(block, rows - r0), buffer.data());
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}
}  // namespace

int main(int argc, char** argv) {
    const int rounds = argc > 1 ? std::atoi(argv[1]) : 4;
    const int wait = argc > 2 ? std::atoi(argv[2]) : 5;
    const std::string dir = argc > 3 ? argv[3] : recalign::io::spill_directory();
    std::vector<double> buffer(block * cols);
    for (std::size_t i = 0; i < buffer.size(); ++i) buffer[i] = 1.0 / static_cast<double>(i + 1);
    const row_spill keeper(dir, 1, 1);  // another file lives: dropped files are kept
    std::printf("round  new file s  kept file s  ratio  (%zu x %zu doubles, %.2f GB, blocks of %zu rows, %d s wait)\n",
                rows, cols, static_cast<double>(rows * cols) * 8e-9, block, wait);
    for (int r = 0; r < rounds; ++r) {
        recalign::io::close_kept_spills();
        std::this_thread::sleep_for(std::chrono::seconds(wait));
        auto a = std::make_unique<row_spill>(dir, rows, cols);
        const double fresh = write_all(*a, buffer);
        a.reset();
        std::this_thread::sleep_for(std::chrono::seconds(wait));
        row_spill b(dir, rows, cols);
        const double kept = write_all(b, buffer);
        std::printf("%5d  %10.3f  %11.3f  %5.1f\n", r + 1, fresh, kept, fresh / kept);
    }
    return 0;
}

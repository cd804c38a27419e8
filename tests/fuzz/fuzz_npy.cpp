// libFuzzer harness: the .npy reader (header parsing, every element type and order, reads of
// rows and of labels). The input is the whole file. Any std::exception is an expected
// rejection; crashes, sanitizer reports, leaks, timeouts and huge allocations are bugs.
#include <cstdint>
#include <exception>
#include <vector>

#include "fuzz_common.hpp"
#include "recalign/io/npy.hpp"

namespace {
// The harness's own bound on work: a header may legitimately announce many empty rows.
constexpr std::uint64_t max_rows_total = 1 << 16;
}

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string& path = recalign_fuzz::temp_path("npy");
    recalign_fuzz::write_file(path, data, size);
    try {
        recalign::io::npy_reader r(path);
        recalign::io::row_block block;
        std::uint64_t total = 0;
        if (r.rows() > 2) r.skip(1);
        while (total < max_rows_total) {
            const std::size_t n = r.read(64, block);
            if (n == 0) break;
            total += n;
            (void)block.view();
        }
    } catch (const std::exception&) {
    }
    try {
        recalign::io::npy_reader r(path);
        std::vector<std::int64_t> labels;
        std::uint64_t total = 0;
        while (total < max_rows_total) {
            const std::size_t n = r.read_labels(100, labels);
            if (n == 0) break;
            total += n;
        }
    } catch (const std::exception&) {
    }
    return 0;
}

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
    recalign_fuzz::drive_reader<recalign::io::npy_reader, recalign::io::row_block>(path, max_rows_total);
    return 0;
}

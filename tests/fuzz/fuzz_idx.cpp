// libFuzzer harness: the IDX reader, plain and gzip. The first input byte selects the mode:
// an even byte means the rest is the file as is (which may itself be gzip: the reader
// detects it by content); an odd byte means the rest is gzip-compressed by the harness
// first, so that mutations reach the IDX parser behind a valid gzip stream.
// Any std::exception is an expected rejection; anything else is a bug.
#include <zlib.h>

#include <cstdint>
#include <cstdlib>
#include <exception>
#include <vector>

#include "fuzz_common.hpp"
#include "recalign/io/idx.hpp"

namespace {
constexpr std::uint64_t max_rows_total = 1 << 16;

std::vector<std::uint8_t> gzip(const std::uint8_t* data, std::size_t size) {
    z_stream z{};
    if (deflateInit2(&z, Z_BEST_SPEED, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) std::abort();
    std::vector<std::uint8_t> out(deflateBound(&z, static_cast<uLong>(size)) + 32);
    z.next_in = const_cast<Bytef*>(data);
    z.avail_in = static_cast<uInt>(size);
    z.next_out = out.data();
    z.avail_out = static_cast<uInt>(out.size());
    if (deflate(&z, Z_FINISH) != Z_STREAM_END) std::abort();
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string& path = recalign_fuzz::temp_path("idx");
    if (data[0] & 1) {
        const auto gz = gzip(data + 1, size - 1);
        recalign_fuzz::write_file(path, gz.data(), gz.size());
    } else {
        recalign_fuzz::write_file(path, data + 1, size - 1);
    }
    recalign_fuzz::drive_reader<recalign::io::idx_reader, recalign::io::row_block>(path, max_rows_total);
    return 0;
}

// libFuzzer harness: decode_image (JPEG through libjpeg, PNG through libpng) and
// transform_image. Byte 0 chooses what follows the decode: bit 0 the channels (1 or 3),
// bits 1-3 a geometry (none, resize, crop, resize + crop, padding crop; hwc or chw by bit 4);
// the rest is the file. Any std::exception is an expected rejection; anything else is a bug.
//
// A valid header may claim up to io::max_image_pixels pixels (PIL's limit), whose buffers
// legitimately exceed the 512 MB allocation rule of the fuzz runs: inputs whose header (PNG
// IHDR, JPEG SOF) claims more than 2^22 pixels are skipped, so the rule keeps catching
// allocations that no header justifies. The refusal of oversized headers is tested in
// tests/io/test_image.cpp.
#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "recalign/io/image.hpp"

namespace {

constexpr std::uint64_t max_fuzz_pixels = std::uint64_t{1} << 22;

std::uint64_t be16(const std::uint8_t* p) { return (std::uint64_t{p[0]} << 8) | p[1]; }
std::uint64_t be32(const std::uint8_t* p) { return (be16(p) << 16) | be16(p + 2); }

// Pixels the header claims (0 if none is found): PNG's IHDR, or the first JPEG SOFn.
std::uint64_t claimed_pixels(const std::uint8_t* d, std::size_t n) {
    if (n >= 24 && d[0] == 0x89 && d[1] == 'P') return be32(d + 16) * be32(d + 20);
    if (n < 4 || d[0] != 0xFF || d[1] != 0xD8) return 0;
    std::size_t i = 2;
    while (i + 9 <= n) {
        if (d[i] != 0xFF) return 0;
        const std::uint8_t m = d[i + 1];
        if (m >= 0xC0 && m <= 0xCF && m != 0xC4 && m != 0xC8 && m != 0xCC) return be16(d + i + 5) * be16(d + i + 7);
        i += 2 + be16(d + i + 2);
    }
    return 0;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::uint8_t mode = data[0];
    ++data;
    --size;
    if (claimed_pixels(data, size) > max_fuzz_pixels) return 0;
    thread_local recalign::io::image decoded, scratch;
    thread_local std::vector<std::uint8_t> out;
    recalign::io::image_geometry g;
    g.channels = (mode & 1) ? 3 : 1;
    switch ((mode >> 1) & 7) {
        case 1: g.resize = 7; break;
        case 2: g.crop_h = 5, g.crop_w = 3; break;
        case 3: g.resize = 16, g.crop_h = g.crop_w = 12; break;
        case 4: g.crop_h = 40, g.crop_w = 9; break;  // pads whatever is smaller
        case 5: g.resize = 1; break;
        default: break;
    }
    g.layout = (mode & 16) ? recalign::image_layout::chw : recalign::image_layout::hwc;
    try {
        recalign::io::decode_image(data, size, g.channels, decoded, "fuzz-input");
        const auto [h, w] = recalign::io::output_size(decoded.height, decoded.width, g);
        if (h * w > max_fuzz_pixels) return 0;  // an upscale of a thin image (resize = 16 of 1 x 60000)
        out.resize(h * w * static_cast<std::size_t>(g.channels));
        recalign::io::transform_image(decoded, g, scratch, out.data(), out.size());
    } catch (const std::exception&) {
    }
    return 0;
}

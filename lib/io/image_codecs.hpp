// Internal to the image decoders (not installed): the two codecs behind decode_image and the
// pixel conversions they share, each exactly as PIL 9.4 converts (libImaging/Convert.c).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>

#include "recalign/io/image.hpp"

namespace recalign::io::detail {

// Both fill out.height/width/channels/pixels with `channels` (1 or 3) per pixel.
void decode_jpeg(const std::uint8_t* data, std::size_t size, int channels, image& out, const std::string& name);
void decode_png(const std::uint8_t* data, std::size_t size, int channels, image& out, const std::string& name);
// Height and width from the header alone (checked as the decoders check them; file_error as
// they throw it for a corrupt or oversized header); nothing of the image data is read.
std::pair<std::size_t, std::size_t> jpeg_size(const std::uint8_t* data, std::size_t size, const std::string& name);
std::pair<std::size_t, std::size_t> png_size(const std::uint8_t* data, std::size_t size, const std::string& name);

// Refuses a header's sizes above max_image_side / max_image_pixels (file_error at `offset`,
// the header field's position), before anything is allocated.
void check_image_size(std::uint64_t height, std::uint64_t width, const std::string& name, std::uint64_t offset);

// PIL's rgb2l: L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16 (the weights sum to 65536).
inline std::uint8_t luma(std::uint8_t r, std::uint8_t g, std::uint8_t b) {
    return static_cast<std::uint8_t>((19595u * r + 38470u * g + 7471u * b + 0x8000u) >> 16);
}

}  // namespace recalign::io::detail

// Image decoding and geometry for the image readers: JPEG (libjpeg-turbo) and PNG (libpng)
// decoded to u8 pixels exactly as PIL 9.4 decodes and converts them (Image.open(f).convert("RGB")
// or .convert("L")), then torchvision's Resize(S) (Pillow's antialiased bilinear resample) and
// CenterCrop((h, w)), laid out as HWC or CHW. Same pixels as PIL + torchvision, bit for bit
// (tests/io/test_image_pixels.py checks every mode it can generate).
//
// Bad input never crashes and never reads out of bounds: corrupt, truncated, unsupported or
// non-image bytes throw recalign::file_error naming the file. Header sizes are checked before
// anything is allocated: a side above max_image_side or more than max_image_pixels pixels
// is refused.
//
// Thread safety: the functions keep no shared state (the working buffers are per thread or
// in the caller's objects), so threads may decode and transform concurrently, each with its
// own `image` objects.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "recalign/core/batch.hpp"

namespace recalign::io {

// Largest image side and pixel count decode_image accepts (checked on the header, before
// any allocation). The pixel limit is PIL's own: Image.open refuses more than
// 2 * Image.MAX_IMAGE_PIXELS (DecompressionBombError); the side limit is JPEG's 65,535
// rounded up to 2^16.
inline constexpr std::size_t max_image_side = std::size_t{1} << 16;
inline constexpr std::size_t max_image_pixels = 2 * std::size_t{89478485};

// What the readers make of every decoded image.
struct image_geometry {
    int channels = 3;                    // 1 or 3: PIL convert("L") / convert("RGB")
    std::size_t resize = 0;              // shorter side -> resize (0: none) = torchvision Resize(S) on PIL
    std::size_t crop_h = 0, crop_w = 0;  // centre crop (0, 0: none) = torchvision CenterCrop((h, w)), 0-padded
    image_layout layout = image_layout::hwc;
    // Throws std::invalid_argument on channels not 1 or 3, a crop with one side 0, a resize or
    // crop side above max_image_side.
    void validate() const;
};

// Fixed-point coefficients of one axis of Pillow's bilinear resample (Resample.c), in -> out
// pixels, for the outputs [lo, hi) a crop keeps: output lo + i reads `count[i]` inputs from
// `first[i]` with weights[i * taps ...].
struct resize_axis {
    std::size_t in = 0, out = 0, taps = 0;
    std::vector<std::int32_t> first, count, weights;
    std::size_t lo = 0, hi = 0;
};

// Decoded pixels: u8, HWC, `channels` (1 or 3) already converted as PIL converts.
struct image {
    std::size_t height = 0, width = 0, channels = 0;
    std::vector<std::uint8_t> pixels;  // reused between calls: no allocation once large enough
    // Used only when this image is transform_image's scratch: the two axes' coefficient tables,
    // rebuilt only when the (in, out) sizes change.
    resize_axis rows, cols;
};

// Decodes a JPEG or PNG (recognised by its magic bytes, not by a name) into `out` with
// `channels` = 1 or 3 (std::invalid_argument otherwise). JPEG: baseline, progressive,
// arithmetic, grayscale, RGB, CMYK/YCCK (read with Adobe's inverted polarity, as PIL does),
// any subsampling; ISLOW IDCT and fancy upsampling, libjpeg's defaults, as PIL. PNG: every
// colour type and bit depth, interlaced or not; alpha and tRNS are dropped without
// compositing, 16-bit samples keep their high byte except 16-bit gray, which PIL reads as
// 32-bit integers and clips to 255 when converting. Gray from colour: PIL's
// L = (19595 R + 38470 G + 7471 B + 0x8000) >> 16; colour from gray: replicated.
// Anything else (other formats, 12-bit JPEG, corrupt or truncated data — where PIL says
// "image file is truncated" — oversized headers) throws file_error naming `name`. One known
// difference: PIL stops reading a PNG once it has every row, libpng reads the image data in
// pieces of up to 8 KB: a PNG cut inside the last bytes of its image data (zlib's checksum),
// or whose last IDAT length claims more bytes than the file holds, is refused here and read
// by PIL. (A bad checksum or CRC after the last row is accepted, as PIL does.)
// libjpeg and libpng allocate their own working memory per image (bounded by its size);
// recalign's buffers (out.pixels, a per-thread row buffer for PNG) are reused.
// Strong guarantee does not hold for `out` (its pixels may be overwritten on error).
void decode_image(const std::uint8_t* data, std::size_t size, int channels, image& out, const std::string& name);
// Height and width from a JPEG's or PNG's header alone, recognised and checked as decode_image
// recognises and checks them (the same file_error for another format, a corrupt or an
// oversized header); nothing of the image data is read or allocated.
std::pair<std::size_t, std::size_t> image_size(const std::uint8_t* data, std::size_t size, const std::string& name);

// Output height and width for an input of h x w after the geometry's resize then crop. Without
// a crop the result can be large: Resize(S) of a 1 x N image is S x S*N, as in torchvision;
// a caller sizing buffers from it checks the product (core/checked.hpp) before allocating.
std::pair<std::size_t, std::size_t> output_size(std::size_t h, std::size_t w, const image_geometry& g);

// Resize + crop + layout of `in` (whose channels must equal g.channels) into out, which must
// hold exactly output_size(in) H * W * channels bytes (std::invalid_argument otherwise).
// `scratch` keeps the intermediate rows and the coefficient tables between calls.
void transform_image(const image& in, const image_geometry& g, image& scratch, std::uint8_t* out,
                     std::size_t out_size);

// torchvision's IMG_EXTENSIONS, case-insensitive: .jpg .jpeg .png .ppm .bmp .pgm .tif .tiff
// .webp (what ImageFolder takes). recalign decodes JPEG and PNG only: the others are taken
// into a folder's file list as torchvision does, and decoding them throws file_error saying
// the format is not supported.
bool is_image_extension(const std::string& filename);

// Reads the file `path` into file_bytes (reused), decodes it into `decoded` with g.channels
// and transforms it into out (exactly output_size(...) bytes; a different size is a
// file_error naming the file: images of different sizes without resize and crop).
void decode_file(const std::string& path, const image_geometry& g, std::vector<std::uint8_t>& file_bytes,
                 image& decoded, image& scratch, std::uint8_t* out, std::size_t out_size);

}  // namespace recalign::io

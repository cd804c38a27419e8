// decode_image's format detection, the geometry's sizes and the file helper; the codecs are
// in image_jpeg.cpp and image_png.cpp, the resample in image_resize.cpp.
#include "recalign/io/image.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>
#include <stdexcept>

#include "image_codecs.hpp"
#include "posix_file.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io {

namespace {

bool starts_with(const std::uint8_t* data, std::size_t size, const char* magic, std::size_t n) {
    return size >= n && std::memcmp(data, magic, n) == 0;
}

// Formats torchvision's ImageFolder takes but recalign does not decode, named in the error.
const char* other_format(const std::uint8_t* d, std::size_t n) {
    if (starts_with(d, n, "BM", 2)) return "BMP";
    if (starts_with(d, n, "GIF8", 4)) return "GIF";
    if (starts_with(d, n, "RIFF", 4) && n >= 12 && std::memcmp(d + 8, "WEBP", 4) == 0) return "WebP";
    if (starts_with(d, n, "II*\0", 4) || starts_with(d, n, "MM\0*", 4)) return "TIFF";
    if (n >= 2 && d[0] == 'P' && d[1] >= '1' && d[1] <= '7') return "PNM (PPM/PGM/PBM)";
    return nullptr;
}

}  // namespace

void image_geometry::validate() const {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument("image channels must be 1 (PIL \"L\") or 3 (PIL \"RGB\"), got " +
                                    std::to_string(channels));
    if ((crop_h == 0) != (crop_w == 0))
        throw std::invalid_argument("image crop " + std::to_string(crop_h) + "x" + std::to_string(crop_w) +
                                    ": both sides must be given (or neither)");
    if (resize > max_image_side || crop_h > max_image_side || crop_w > max_image_side)
        throw std::invalid_argument("image resize / crop sides must be at most " + std::to_string(max_image_side));
    if (layout != image_layout::hwc && layout != image_layout::chw)
        throw std::invalid_argument("image layout must be hwc or chw");
}

namespace detail {
void check_image_size(std::uint64_t height, std::uint64_t width, const std::string& name, std::uint64_t offset) {
    if (height == 0 || width == 0)
        throw file_error(name, offset, "image has no pixels (" + std::to_string(height) + "x" + std::to_string(width) + ")");
    if (height > max_image_side || width > max_image_side)
        throw file_error(name, offset, "image of " + std::to_string(height) + "x" + std::to_string(width) +
                                           " pixels refused: a side is above " + std::to_string(max_image_side));
    if (height * width > max_image_pixels)  // both <= 2^16: cannot wrap
        throw file_error(name, offset, "image of " + std::to_string(height) + "x" + std::to_string(width) +
                                           " pixels refused: more than " + std::to_string(max_image_pixels) +
                                           " pixels (PIL's decompression-bomb limit)");
}
}  // namespace detail

namespace {
enum class codec { jpeg, png };
// Which decoder reads `data` (by its magic bytes); file_error for anything else.
codec codec_of(const std::uint8_t* data, std::size_t size, const std::string& name) {
    if (size == 0 || data == nullptr) throw file_error(name, "empty file: not an image");
    if (starts_with(data, size, "\xFF\xD8\xFF", 3)) return codec::jpeg;
    if (starts_with(data, size, "\x89PNG\r\n\x1A\n", 8)) return codec::png;
    if (const char* f = other_format(data, size))
        throw file_error(name, 0, std::string(f) + " image: recalign decodes only JPEG and PNG");
    throw file_error(name, 0, "not a JPEG or PNG image (unrecognised leading bytes)");
}
}  // namespace

void decode_image(const std::uint8_t* data, std::size_t size, int channels, image& out, const std::string& name) {
    if (channels != 1 && channels != 3)
        throw std::invalid_argument("decode_image: channels must be 1 or 3, got " + std::to_string(channels));
    if (codec_of(data, size, name) == codec::jpeg) return detail::decode_jpeg(data, size, channels, out, name);
    return detail::decode_png(data, size, channels, out, name);
}

std::pair<std::size_t, std::size_t> image_size(const std::uint8_t* data, std::size_t size, const std::string& name) {
    return codec_of(data, size, name) == codec::jpeg ? detail::jpeg_size(data, size, name)
                                                     : detail::png_size(data, size, name);
}

std::pair<std::size_t, std::size_t> output_size(std::size_t h, std::size_t w, const image_geometry& g) {
    if (g.resize != 0 && h != 0 && w != 0) {
        // torchvision's _compute_resized_output_size: the short side becomes S, the long side
        // int(S * long / short) (a correctly rounded double quotient, truncated).
        const std::size_t short_side = std::min(h, w), long_side = std::max(h, w);
        const auto new_long = static_cast<std::size_t>(static_cast<double>(checked_mul(g.resize, long_side, "resize")) /
                                                       static_cast<double>(short_side));
        if (w <= h) {
            w = g.resize;
            h = new_long;
        } else {
            h = g.resize;
            w = new_long;
        }
    }
    if (g.crop_h != 0) {
        h = g.crop_h;
        w = g.crop_w;
    }
    return {h, w};
}

bool is_image_extension(const std::string& filename) {
    static const char* const extensions[] = {".jpg", ".jpeg", ".png", ".ppm", ".bmp", ".pgm", ".tif", ".tiff", ".webp"};
    std::string lower(filename);
    std::transform(lower.begin(), lower.end(), lower.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const char* e : extensions) {
        const std::size_t n = std::strlen(e);
        if (lower.size() >= n && lower.compare(lower.size() - n, n, e) == 0) return true;
    }
    return false;
}

void decode_file(const std::string& path, const image_geometry& g, std::vector<std::uint8_t>& file_bytes,
                 image& decoded, image& scratch, std::uint8_t* out, std::size_t out_size) {
    std::uint64_t size = 0;
    int fd = detail::open_read(path, size);
    try {
        file_bytes.resize(checked_bytes<std::uint8_t>(size, "image file size"));
        detail::pread_exact(fd, file_bytes.data(), file_bytes.size(), 0, path);
    } catch (...) {
        detail::close_fd(fd);
        throw;
    }
    detail::close_fd(fd);
    decode_image(file_bytes.data(), file_bytes.size(), g.channels, decoded, path);
    const auto [h, w] = output_size(decoded.height, decoded.width, g);
    const std::uint64_t need = checked_product({h, w, static_cast<std::uint64_t>(g.channels)}, "image output");
    if (need != out_size)
        throw file_error(path, "image of " + std::to_string(decoded.height) + "x" + std::to_string(decoded.width) +
                                   " pixels gives " + std::to_string(h) + "x" + std::to_string(w) + "x" +
                                   std::to_string(g.channels) + " = " + std::to_string(need) + " values, the data set's rows have " +
                                   std::to_string(out_size) + " (images of different sizes need a resize and/or crop: the CLI's --resize / --crop, Python's "
                                   "resize= / crop=)");
    transform_image(decoded, g, scratch, out, out_size);
}

}  // namespace recalign::io

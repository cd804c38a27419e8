// The PNG grid of `project`, encoded in memory with libpng and written atomically (an
// existing file is replaced whole or left as it was, never truncated).
#include <png.h>

#include <cmath>
#include <csetjmp>
#include <stdexcept>

#include "paths.hpp"
#include "render.hpp"

namespace recalign::cli {

namespace {

std::vector<unsigned char> compose(const image_grid& g) {
    const std::size_t cw = g.width * g.zoom, ch = g.height * g.zoom, W = g.pixel_width(), H = g.pixel_height();
    std::vector<unsigned char> img(W * H * g.channels, 255);
    for (std::size_t r = 0; r < g.rows; ++r)
        for (std::size_t c = 0; c < g.cols; ++c) {
            const auto& cell = g.cells[r * g.cols + c];
            const std::size_t x0 = g.gap + c * (cw + g.gap), y0 = g.gap + r * (ch + g.gap);
            for (std::size_t y = 0; y < ch; ++y)
                for (std::size_t x = 0; x < cw; ++x)
                    for (std::size_t k = 0; k < g.channels; ++k)
                        img[((y0 + y) * W + x0 + x) * g.channels + k] =
                            cell[((y / g.zoom) * g.width + x / g.zoom) * g.channels + k];
        }
    return img;
}

extern "C" void append_bytes(png_structp png, png_bytep data, png_size_t length) {
    auto* out = static_cast<std::string*>(png_get_io_ptr(png));
    out->append(reinterpret_cast<const char*>(data), length);
}
extern "C" void no_flush(png_structp) {}

// libpng reports errors by longjmp: nothing with a destructor may live in this frame.
bool encode(const image_grid& g, const std::vector<unsigned char>& img, std::string* out) {
    const std::size_t W = g.pixel_width(), H = g.pixel_height();
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        return false;
    }
    png_set_write_fn(png, out, append_bytes, no_flush);
    png_set_IHDR(png, info, static_cast<png_uint_32>(W), static_cast<png_uint_32>(H), 8,
                 g.channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    // Unfiltered rows: the grids are small, and the file stays trivially checkable.
    png_set_filter(png, 0, PNG_FILTER_NONE);
    png_write_info(png, info);
    for (std::size_t y = 0; y < H; ++y) png_write_row(png, &img[y * W * g.channels]);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    return true;
}

}  // namespace

// One image (D values, layout hwc or chw) stretched to [0, 255] by its own minimum and maximum, as HWC bytes.
std::vector<unsigned char> image_pixels(const double* v, const std::vector<std::size_t>& shape, bool chw) {
    const std::size_t h = shape[0], w = shape[1], ch = shape[2], d = h * w * ch;
    double lo = v[0], hi = v[0];
    for (std::size_t i = 0; i < d; ++i) lo = std::min(lo, v[i]), hi = std::max(hi, v[i]);
    const double span = hi > lo ? hi - lo : 1.0;
    std::vector<unsigned char> out(d);
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x)
            for (std::size_t k = 0; k < ch; ++k) {
                const double val = chw ? v[(k * h + y) * w + x] : v[(y * w + x) * ch + k];
                out[(y * w + x) * ch + k] = static_cast<unsigned char>(std::lround(255.0 * (val - lo) / span));
            }
    return out;
}


void write_png(const std::string& path, const image_grid& g) {
    if (g.channels != 1 && g.channels != 3) throw std::invalid_argument("PNG grids need 1 or 3 channels");
    if (g.pixel_width() > max_png_side || g.pixel_height() > max_png_side)
        throw std::invalid_argument("a PNG of " + std::to_string(g.pixel_width()) + " x " +
                                    std::to_string(g.pixel_height()) + " pixels is larger than " +
                                    std::to_string(max_png_side) + " on a side");
    const std::vector<unsigned char> img = compose(g);
    std::string bytes;
    if (!encode(g, img, &bytes)) throw std::runtime_error("libpng failed encoding " + path);
    write_output_file(path, bytes);
}

}  // namespace recalign::cli

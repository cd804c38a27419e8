// PNG through libpng, converted as PIL 9.4 converts: PngImagePlugin's modes for each
// (bit depth, colour type), then convert("RGB") / convert("L"). libpng applies no transform
// but unpacking 1/2/4-bit samples to bytes and interlace handling; every conversion below is
// PIL's own:
//   gray 1/2/4 bit     "1", "L;2", "L;4": v * 255 / (2^bits - 1)
//   gray 16 bit        "I" (32-bit integers), then I -> L / RGB clips to 0..255
//   RGB, RGBA, LA 16   high byte of each sample ("RGB;16B", "RGBA;16B", "LA;16B")
//   palette            the PLTE entry (indices past it read black, as PIL's padded palette)
//   alpha, tRNS        dropped, no compositing; gAMA, cHRM, iCCP, sRGB ignored
// and read as far as PIL reads: chunk CRCs checked before the image data, not in it, and a
// failure after the last row (zlib's checksum, data past it) ignored.
//
// libpng reports errors through a callback that must not return; it longjmps back to
// read_header() or read_rows(), whose frames hold no C++ object with a destructor.
#include <png.h>

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

#include "image_codecs.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io::detail {

namespace {

struct png_source {
    const std::uint8_t* data;
    std::size_t size, pos;
    char message[256];
};

void on_error(png_structp png, png_const_charp text) {
    auto* src = static_cast<png_source*>(png_get_error_ptr(png));
    std::snprintf(src->message, sizeof src->message, "%s", text);
    png_longjmp(png, 1);
}
void on_warning(png_structp, png_const_charp) {}  // PIL ignores what libpng only warns about

void on_read(png_structp png, png_bytep dst, png_size_t n) {
    auto* src = static_cast<png_source*>(png_get_io_ptr(png));
    if (n > src->size - src->pos) {
        std::snprintf(src->message, sizeof src->message, "truncated: the data ends inside a chunk");
        src->pos = src->size;
        png_longjmp(png, 1);
    }
    std::memcpy(dst, src->data + src->pos, n);
    src->pos += n;
}

struct png_header {
    png_uint_32 width = 0, height = 0;
    int bit_depth = 0, color_type = 0, interlace = 0;
    png_colorp palette = nullptr;
    int palette_size = 0;
};

bool read_header(png_structp png, png_infop info, png_header& h) {
    if (setjmp(png_jmpbuf(png))) return false;
    // PIL checks the CRC of every chunk before the image data (ancillary ones too) and none
    // of the image data's (PngImagePlugin skips IDAT CRCs): the same here.
    png_set_crc_action(png, PNG_CRC_DEFAULT, PNG_CRC_ERROR_QUIT);
    png_read_info(png, info);
    png_set_crc_action(png, PNG_CRC_QUIET_USE, PNG_CRC_QUIET_USE);
    png_get_IHDR(png, info, &h.width, &h.height, &h.bit_depth, &h.color_type, &h.interlace, nullptr, nullptr);
    if (h.color_type == PNG_COLOR_TYPE_PALETTE) png_get_PLTE(png, info, &h.palette, &h.palette_size);
    if (h.bit_depth < 8) png_set_packing(png);
    png_set_interlace_handling(png);
    png_read_update_info(png, info);
    return true;
}

// Non-interlaced: one row at a time; interlaced: the whole image at once (Adam7 passes).
bool read_rows(png_structp png, bool interlaced, png_bytep* rows, std::size_t height) {
    if (setjmp(png_jmpbuf(png))) return false;
    if (interlaced) png_read_image(png, rows);
    else
        for (std::size_t y = 0; y < height; ++y) png_read_row(png, rows[y], nullptr);
    return true;
}

struct png_reader {
    png_source src{};
    png_structp png = nullptr;
    png_infop info = nullptr;
    png_reader(const std::uint8_t* data, std::size_t size) {
        src.data = data;
        src.size = size;
        png = png_create_read_struct(PNG_LIBPNG_VER_STRING, &src, on_error, on_warning);
        if (png) info = png_create_info_struct(png);
        if (!png || !info) throw std::bad_alloc();
        png_set_read_fn(png, &src, on_read);
    }
    ~png_reader() { png_destroy_read_struct(&png, &info, nullptr); }
    png_reader(const png_reader&) = delete;
    png_reader& operator=(const png_reader&) = delete;
};

// One raw row (after unpacking) -> `channels` bytes per pixel.
void convert_row(const png_header& h, const std::uint8_t* in, std::size_t width, int channels, std::uint8_t* out) {
    const bool wide = h.bit_depth == 16;
    auto put = [&](std::size_t x, std::uint8_t r, std::uint8_t g, std::uint8_t b) {
        if (channels == 3) {
            out[3 * x] = r;
            out[3 * x + 1] = g;
            out[3 * x + 2] = b;
        } else {
            out[x] = luma(r, g, b);
        }
    };
    auto put_gray = [&](std::size_t x, std::uint8_t v) {
        if (channels == 3) out[3 * x] = out[3 * x + 1] = out[3 * x + 2] = v;
        else out[x] = v;
    };
    switch (h.color_type) {
        case PNG_COLOR_TYPE_GRAY:
            if (wide) {
                for (std::size_t x = 0; x < width; ++x) {
                    const unsigned v = (unsigned{in[2 * x]} << 8) | in[2 * x + 1];
                    put_gray(x, static_cast<std::uint8_t>(v > 255 ? 255 : v));
                }
            } else {
                const unsigned scale = 255u / ((1u << h.bit_depth) - 1u);
                for (std::size_t x = 0; x < width; ++x) put_gray(x, static_cast<std::uint8_t>(in[x] * scale));
            }
            break;
        case PNG_COLOR_TYPE_GRAY_ALPHA: {
            const std::size_t step = wide ? 4 : 2;
            for (std::size_t x = 0; x < width; ++x) put_gray(x, in[step * x]);
            break;
        }
        case PNG_COLOR_TYPE_RGB:
        case PNG_COLOR_TYPE_RGB_ALPHA: {
            const std::size_t sample = wide ? 2 : 1;
            const std::size_t step = sample * (h.color_type == PNG_COLOR_TYPE_RGB ? 3 : 4);
            for (std::size_t x = 0; x < width; ++x) {
                const std::uint8_t* p = in + step * x;
                put(x, p[0], p[sample], p[2 * sample]);
            }
            break;
        }
        case PNG_COLOR_TYPE_PALETTE:
            for (std::size_t x = 0; x < width; ++x) {
                if (in[x] < h.palette_size) {
                    const png_color& c = h.palette[in[x]];
                    put(x, c.red, c.green, c.blue);
                } else {
                    put(x, 0, 0, 0);
                }
            }
            break;
        default: break;  // libpng refuses other colour types in png_read_info
    }
}

std::vector<std::uint8_t>& thread_buffer() {
    thread_local std::vector<std::uint8_t> raw;  // raw rows, reused by every decode on this thread
    return raw;
}
std::vector<png_bytep>& thread_rows() {
    thread_local std::vector<png_bytep> rows;
    return rows;
}

}  // namespace

// After a failure: whether libpng had already delivered every row (it failed finishing the
// image data: zlib's checksum, data past the rows). PIL stops once it has every row and reads
// such a file, so it is read here too. libpng counts rows (and passes) up before finishing.
bool rows_complete(png_structp png, bool interlaced, std::size_t height) {
    return interlaced ? png_get_current_pass_number(png) >= 7 : png_get_current_row_number(png) >= height;
}

std::pair<std::size_t, std::size_t> png_size(const std::uint8_t* data, std::size_t size, const std::string& name) {
    png_reader r(data, size);
    png_header h;
    if (!read_header(r.png, r.info, h)) throw file_error(name, r.src.pos, std::string("corrupt PNG: ") + r.src.message);
    check_image_size(h.height, h.width, name, 16);  // IHDR's width field
    return {h.height, h.width};
}

void decode_png(const std::uint8_t* data, std::size_t size, int channels, image& out, const std::string& name) {
    png_reader r(data, size);
    png_header h;
    if (!read_header(r.png, r.info, h)) throw file_error(name, r.src.pos, std::string("corrupt PNG: ") + r.src.message);
    check_image_size(h.height, h.width, name, 16);  // IHDR's width field
    const bool interlaced = h.interlace != PNG_INTERLACE_NONE;
    const std::size_t row_bytes = png_get_rowbytes(r.png, r.info);  // <= 2^16 pixels x 8 bytes
    std::vector<std::uint8_t>& raw = thread_buffer();
    std::vector<png_bytep>& rows = thread_rows();
    raw.resize(row_bytes * (interlaced ? h.height : 1));
    rows.resize(h.height);
    for (std::size_t y = 0; y < h.height; ++y) rows[y] = raw.data() + (interlaced ? y * row_bytes : 0);

    out.height = h.height;
    out.width = h.width;
    out.channels = static_cast<std::size_t>(channels);
    out.pixels.resize(out.height * out.width * out.channels);  // sizes checked: no wrap
    const std::size_t out_stride = out.width * out.channels;
    auto fail = [&] { throw file_error(name, r.src.pos, std::string("corrupt PNG: ") + r.src.message); };
    if (interlaced) {
        if (!read_rows(r.png, true, rows.data(), h.height) && !rows_complete(r.png, true, h.height)) fail();
        for (std::size_t y = 0; y < h.height; ++y)
            convert_row(h, rows[y], h.width, channels, out.pixels.data() + y * out_stride);
    } else {
        // Row by row through one raw row: libpng reads, then this row is converted.
        for (std::size_t y = 0; y < h.height; ++y) {
            if (!read_rows(r.png, false, rows.data() + y, 1) && !(y + 1 == h.height && rows_complete(r.png, false, h.height)))
                fail();
            convert_row(h, raw.data(), h.width, channels, out.pixels.data() + y * out_stride);
        }
    }
}

}  // namespace recalign::io::detail

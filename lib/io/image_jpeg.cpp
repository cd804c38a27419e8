// JPEG through libjpeg-turbo's libjpeg API, the interface PIL's JpegDecode.c calls, with the
// same settings (libjpeg's defaults: ISLOW IDCT, fancy upsampling, block smoothing) and the
// same output colour spaces (L, RGB, CMYK read with Adobe's inverted polarity), so the pixels
// are PIL's bit for bit. The TurboJPEG wrapper is not used: it reports only "a warning
// happened", and which warning decides between PIL's "image file is truncated" and a
// tolerated glitch (extraneous bytes before a marker).
//
// libjpeg reports errors through a callback that must not return; it longjmps back to
// read_header() or read_pixels(), whose frames hold no C++ object with a destructor (the
// jump would skip it).
#include <csetjmp>
#include <cstdio>  // jpeglib.h needs FILE
#include <cstring>
#include <string>

#include <jerror.h>
#include <jpeglib.h>

#include "image_codecs.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io::detail {

namespace {

struct jpeg_error_state {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
    bool reading_pixels;  // premature end before the last scanline = PIL's "truncated"
};

void on_error(j_common_ptr cinfo) {
    auto* e = reinterpret_cast<jpeg_error_state*>(cinfo->err);
    (*cinfo->err->format_message)(cinfo, e->message);
    std::longjmp(e->jump, 1);
}

// Warnings (level -1) are tolerated as PIL tolerates them, except running out of data while
// pixels are still owed: PIL's decoder then asks for bytes the file does not have and
// Image.load raises "image file is truncated". Trace messages (level >= 0) are ignored.
void on_message(j_common_ptr cinfo, int level) {
    auto* e = reinterpret_cast<jpeg_error_state*>(cinfo->err);
    if (level >= 0) return;
    if (cinfo->err->msg_code == JWRN_JPEG_EOF && e->reading_pixels) {
        std::snprintf(e->message, sizeof e->message, "truncated: the data ends before the last scanline");
        std::longjmp(e->jump, 1);
    }
    cinfo->err->num_warnings++;
}

// The two phases libjpeg runs in, each returning false with err.message set on failure.
// Plain C-style state only (see the file comment).
bool read_header(jpeg_decompress_struct& cinfo, jpeg_error_state& err, const std::uint8_t* data, std::size_t size) {
    if (setjmp(err.jump)) return false;
    jpeg_mem_src(&cinfo, data, static_cast<unsigned long>(size));
    jpeg_read_header(&cinfo, TRUE);
    // PIL's JpegImagePlugin: 1 component = "L", 3 = "RGB", 4 = "CMYK" (read as "CMYK;I"), others refused.
    switch (cinfo.num_components) {
        case 1: cinfo.out_color_space = JCS_GRAYSCALE; break;
        case 3: cinfo.out_color_space = JCS_RGB; break;
        case 4: cinfo.out_color_space = JCS_CMYK; break;
        default:
            std::snprintf(err.message, sizeof err.message, "JPEG with %d components (PIL reads 1, 3 or 4)",
                          cinfo.num_components);
            return false;
    }
    return true;
}

bool read_pixels(jpeg_decompress_struct& cinfo, jpeg_error_state& err, std::uint8_t* pixels) {
    if (setjmp(err.jump)) return false;
    err.reading_pixels = true;  // a progressive file is read whole by jpeg_start_decompress
    jpeg_start_decompress(&cinfo);
    const std::size_t stride = std::size_t{cinfo.output_width} * static_cast<std::size_t>(cinfo.output_components);
    while (cinfo.output_scanline < cinfo.output_height) {
        JSAMPROW row = pixels + std::size_t{cinfo.output_scanline} * stride;
        jpeg_read_scanlines(&cinfo, &row, 1);
    }
    err.reading_pixels = false;
    jpeg_finish_decompress(&cinfo);
    return true;
}

struct decompressor {
    jpeg_decompress_struct cinfo;
    jpeg_error_state err;
    decompressor() {
        std::memset(&err, 0, sizeof err);
        cinfo.err = jpeg_std_error(&err.mgr);
        err.mgr.error_exit = on_error;
        err.mgr.emit_message = on_message;
        jpeg_create_decompress(&cinfo);
    }
    ~decompressor() { jpeg_destroy_decompress(&cinfo); }
    decompressor(const decompressor&) = delete;
    decompressor& operator=(const decompressor&) = delete;
    // Where libjpeg stopped reading: the best byte offset we know for a failure.
    std::uint64_t offset(std::size_t size) const { return cinfo.src ? size - cinfo.src->bytes_in_buffer : 0; }
};

// PIL's cmyk2rgb on the inverted ("CMYK;I") samples: nk = 255 - K, R = nk - C * nk / 255
// with its rounding MULDIV255(a, b) = ((a b + 128) >> 8 + a b + 128) >> 8.
inline std::uint8_t cmyk_channel(unsigned c, unsigned nk) {
    const unsigned t = c * nk + 128;
    return static_cast<std::uint8_t>(nk - (((t >> 8) + t) >> 8));
}

}  // namespace

std::pair<std::size_t, std::size_t> jpeg_size(const std::uint8_t* data, std::size_t size, const std::string& name) {
    decompressor d;
    if (!read_header(d.cinfo, d.err, data, size))
        throw file_error(name, d.offset(size), std::string("corrupt JPEG: ") + d.err.message);
    check_image_size(d.cinfo.image_height, d.cinfo.image_width, name, 0);
    return {d.cinfo.image_height, d.cinfo.image_width};
}

void decode_jpeg(const std::uint8_t* data, std::size_t size, int channels, image& out, const std::string& name) {
    decompressor d;
    if (!read_header(d.cinfo, d.err, data, size))
        throw file_error(name, d.offset(size), std::string("corrupt JPEG: ") + d.err.message);
    check_image_size(d.cinfo.image_height, d.cinfo.image_width, name, 0);
    const int components = d.cinfo.num_components;
    out.height = d.cinfo.image_height;
    out.width = d.cinfo.image_width;
    out.pixels.resize(out.height * out.width * static_cast<std::size_t>(components));  // sizes checked: no wrap
    if (!read_pixels(d.cinfo, d.err, out.pixels.data()))
        throw file_error(name, d.offset(size), std::string("corrupt JPEG: ") + d.err.message);

    // Native samples (1, 3 or 4 per pixel) -> `channels`, in place (the output never outruns the input).
    const std::size_t n = out.height * out.width;
    std::uint8_t* p = out.pixels.data();
    if (components == 4) {
        for (std::size_t i = 0; i < n; ++i) {
            const std::uint8_t* s = p + 4 * i;  // PIL stores 255 - libjpeg's CMYK ("CMYK;I")
            const unsigned nk = s[3];           // 255 - (255 - K)
            const std::uint8_t r = cmyk_channel(255u - s[0], nk), g = cmyk_channel(255u - s[1], nk),
                               b = cmyk_channel(255u - s[2], nk);
            if (channels == 3) {
                p[3 * i] = r;
                p[3 * i + 1] = g;
                p[3 * i + 2] = b;
            } else {
                p[i] = luma(r, g, b);  // PIL: CMYK -> RGB -> L
            }
        }
    } else if (components == 3 && channels == 1) {
        for (std::size_t i = 0; i < n; ++i) p[i] = luma(p[3 * i], p[3 * i + 1], p[3 * i + 2]);
    } else if (components == 1 && channels == 3) {
        out.pixels.resize(3 * n);
        p = out.pixels.data();
        for (std::size_t i = n; i-- > 0;) p[3 * i] = p[3 * i + 1] = p[3 * i + 2] = p[i];
    }
    out.pixels.resize(n * static_cast<std::size_t>(channels));
    out.channels = static_cast<std::size_t>(channels);
}

}  // namespace recalign::io::detail

// Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<harness>/): small valid
// files of every kind the readers accept, made with the library's own writers where it has
// them, and a few slightly broken ones. Regenerate with
//
//   ninja -C build-fuzz tests/fuzz/fuzz-make-seeds && build-fuzz/tests/fuzz/fuzz-make-seeds tests/fuzz/corpus
//
// (the regression/ folders are not touched). Inputs of the idx and checkpoint harnesses
// start with the harness's mode byte (see fuzz_idx.cpp, fuzz_checkpoint.cpp).
#include <png.h>
#include <zlib.h>

#include <cstddef>
#include <cstdio>  // before jpeglib.h, which needs size_t and FILE
#include <cstdlib>
#include <jpeglib.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

#include "recalign/align/tracker.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/stats/class_moments.hpp"
#include "recalign/stats/moments.hpp"

namespace fs = std::filesystem;
using namespace recalign;

namespace {
fs::path root;

void save(const std::string& dir, const std::string& name, const std::string& bytes) {
    fs::create_directories(root / dir);
    std::ofstream(root / dir / name, std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

std::string npy(const std::string& descr, bool fortran, const std::string& shape, const std::string& data,
                int major = 1) {
    std::string dict = "{'descr': '" + descr + "', 'fortran_order': " + (fortran ? "True" : "False") +
                       ", 'shape': " + shape + ", }";
    const std::size_t pre = major == 1 ? 10 : 12;
    while ((pre + dict.size() + 1) % 64 != 0) dict += ' ';
    dict += '\n';
    std::string out = "\x93NUMPY";
    out += static_cast<char>(major);
    out += '\0';
    const std::uint32_t len = static_cast<std::uint32_t>(dict.size());
    out += static_cast<char>(len & 0xff);
    out += static_cast<char>((len >> 8) & 0xff);
    if (major != 1) {
        out += static_cast<char>((len >> 16) & 0xff);
        out += static_cast<char>((len >> 24) & 0xff);
    }
    return out + dict + data;
}

std::string bytes_of(std::size_t n, unsigned start = 1) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) s += static_cast<char>((start + 37 * i) & 0xff);
    return s;
}

template <class T>
std::string values(std::size_t n, double scale, bool big_endian = false) {
    std::string s;
    for (std::size_t i = 0; i < n; ++i) {
        const T v = static_cast<T>(scale * static_cast<double>(i % 7) - scale);
        char b[sizeof(T)];
        std::memcpy(b, &v, sizeof(T));
        if (big_endian) std::reverse(b, b + sizeof(T));
        s.append(b, sizeof(T));
    }
    return s;
}

std::string idx(std::uint8_t type, const std::vector<std::uint32_t>& dims, const std::string& data) {
    std::string s = {'\0', '\0', static_cast<char>(type), static_cast<char>(dims.size())};
    for (auto d : dims) {
        s += static_cast<char>(d >> 24);
        s += static_cast<char>((d >> 16) & 0xff);
        s += static_cast<char>((d >> 8) & 0xff);
        s += static_cast<char>(d & 0xff);
    }
    return s + data;
}

std::string gzip(const std::string& in) {
    z_stream z{};
    deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, static_cast<uLong>(in.size())) + 32, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
    z.avail_in = static_cast<uInt>(in.size());
    z.next_out = reinterpret_cast<Bytef*>(&out[0]);
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
}

template <class T>
std::string state(const T& obj) {
    std::ostringstream os(std::ios::binary);
    obj.save(os);
    return os.str();
}

std::vector<double> data(std::size_t rows, std::size_t cols) {
    std::vector<double> x(rows * cols);
    for (std::size_t i = 0; i < x.size(); ++i) x[i] = static_cast<double>((i * 7919) % 13) / 13.0 - 0.3;
    return x;
}

void checkpoint_seeds(const std::string& name, unsigned kind, const std::string& bytes) {
    save("checkpoint", name + ".raw", std::string(1, static_cast<char>(kind)) + bytes);
    save("checkpoint", name + ".reframed", std::string(1, static_cast<char>(0x10 | kind)) + bytes);
}

// A small smooth image (channels interleaved) so that the codecs' seeds have real content.
std::vector<std::uint8_t> pixels(std::size_t h, std::size_t w, std::size_t c) {
    std::vector<std::uint8_t> p(h * w * c);
    for (std::size_t i = 0; i < p.size(); ++i) p[i] = static_cast<std::uint8_t>((i * 13 + (i / (w * c)) * 29) & 0xff);
    return p;
}

// JPEG through libjpeg's compressor: colour space, progressive, 4:4:4 or 4:2:0, the colour
// space stored in the file (YCCK), arithmetic coding.
std::string jpeg(std::size_t h, std::size_t w, J_COLOR_SPACE space, int components, bool progressive, bool full_chroma,
                 J_COLOR_SPACE stored = JCS_UNKNOWN, bool arithmetic = false) {
    jpeg_compress_struct c;
    jpeg_error_mgr err;
    c.err = jpeg_std_error(&err);
    jpeg_create_compress(&c);
    unsigned char* buf = nullptr;
    unsigned long size = 0;
    jpeg_mem_dest(&c, &buf, &size);
    c.image_width = static_cast<JDIMENSION>(w);
    c.image_height = static_cast<JDIMENSION>(h);
    c.input_components = components;
    c.in_color_space = space;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 85, TRUE);
    if (stored != JCS_UNKNOWN) jpeg_set_colorspace(&c, stored);  // e.g. CMYK stored as YCCK
    c.arith_code = arithmetic ? TRUE : FALSE;
    if (progressive) jpeg_simple_progression(&c);
    if (full_chroma) c.comp_info[0].h_samp_factor = c.comp_info[0].v_samp_factor = 1;
    jpeg_start_compress(&c, TRUE);
    const auto p = pixels(h, w, static_cast<std::size_t>(components));
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = const_cast<JSAMPROW>(p.data() + c.next_scanline * w * static_cast<std::size_t>(components));
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    std::string out(reinterpret_cast<char*>(buf), size);
    jpeg_destroy_compress(&c);
    std::free(buf);
    return out;
}

// PNG through libpng's writer: any colour type and bit depth, Adam7 or not, a palette with tRNS.
std::string png(std::size_t h, std::size_t w, int color_type, int bit_depth, bool interlaced) {
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(p);
    std::string out;
    png_set_write_fn(p, &out, [](png_structp q, png_bytep d, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(q))->append(reinterpret_cast<char*>(d), n);
    }, nullptr);
    png_set_IHDR(p, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), bit_depth, color_type,
                 interlaced ? PNG_INTERLACE_ADAM7 : PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    if (color_type == PNG_COLOR_TYPE_PALETTE) {
        png_color pal[5] = {{0, 0, 0}, {255, 0, 0}, {0, 255, 0}, {0, 0, 255}, {9, 99, 199}};
        png_set_PLTE(p, info, pal, 5);
        png_byte alpha[2] = {0, 128};
        png_set_tRNS(p, info, alpha, 2, nullptr);
    }
    png_write_info(p, info);
    const std::size_t row_bytes = png_get_rowbytes(p, info);
    std::vector<std::uint8_t> rows(h * row_bytes);
    for (std::size_t i = 0; i < rows.size(); ++i) rows[i] = static_cast<std::uint8_t>((i * 7) % (color_type == PNG_COLOR_TYPE_PALETTE ? 5 : 256));
    if (color_type == PNG_COLOR_TYPE_PALETTE && bit_depth < 8) std::fill(rows.begin(), rows.end(), 0x12);
    std::vector<png_bytep> ptrs(h);
    for (std::size_t y = 0; y < h; ++y) ptrs[y] = rows.data() + y * row_bytes;
    png_write_image(p, ptrs.data());
    png_write_end(p, nullptr);
    png_destroy_write_struct(&p, &info);
    return out;
}
}  // namespace

int main(int argc, char** argv) {
    if (argc != 2) {
        std::cerr << "usage: fuzz-make-seeds <corpus dir>\n";
        return 2;
    }
    root = argv[1];

    // --- .npy -------------------------------------------------------------------------
    save("npy", "f8_c", npy("<f8", false, "(2, 3)", values<double>(6, 0.5)));
    save("npy", "f4_c", npy("<f4", false, "(4, 5)", values<float>(20, 0.25)));
    save("npy", "f4_be", npy(">f4", false, "(2, 2)", values<float>(4, 0.25, true)));
    save("npy", "i2_be", npy(">i2", false, "(3, 2)", values<std::int16_t>(6, 300, true)));
    save("npy", "u1", npy("|u1", false, "(5, 4)", bytes_of(20)));
    save("npy", "b1_1d", npy("|b1", false, "(6,)", std::string("\1\0\1\1\0\1", 6)));
    save("npy", "i8_labels", npy("<i8", false, "(10,)", values<std::int64_t>(10, 1)));
    save("npy", "u4_v2", npy("<u4", false, "(2, 3)", values<std::uint32_t>(6, 2), 2));
    save("npy", "f2", npy("<f2", false, "(2, 2)", std::string("\0\x3c\0\xc0\x00\x7c\x01\x00", 8)));
    save("npy", "f8_fortran", npy("<f8", true, "(3, 4)", values<double>(12, 1.5)));
    save("npy", "f4_3d_v3", npy("<f4", false, "(2, 2, 3)", values<float>(12, 1), 3));
    save("npy", "empty_rows", npy("<f8", false, "(0, 5)", ""));
    save("npy", "zero_cols", npy("<f8", false, "(4, 0)", ""));
    save("npy", "truncated", npy("<f8", false, "(2, 3)", values<double>(6, 0.5)).substr(0, 64 + 43));
    save("npy", "absurd_shape", npy("<f8", false, "(1099511627776, 1000)", values<double>(4, 1)));
    save("npy", "scalar_0d", npy("<f8", false, "()", values<double>(1, 1)));
    save("npy", "unknown_descr", npy("<c16", false, "(1, 1)", values<double>(2, 1)));

    // --- IDX (mode byte 0: as is; 1: the harness gzips the rest) -----------------------
    const std::string images = idx(0x08, {4, 3, 3}, bytes_of(36));
    const std::string labels = idx(0x08, {10}, std::string("\0\1\2\3\4\5\6\7\x08\x09", 10));
    save("idx", "u8_images", std::string(1, '\0') + images);
    save("idx", "u8_labels", std::string(1, '\0') + labels);
    save("idx", "u8_images.gzwrap", std::string(1, '\1') + images);
    save("idx", "u8_labels.gzwrap", std::string(1, '\1') + labels);
    save("idx", "u8_images.gz", std::string(1, '\0') + gzip(images));
    save("idx", "i8", std::string(1, '\0') + idx(0x09, {3, 2}, bytes_of(6, 200)));
    save("idx", "i16", std::string(1, '\0') + idx(0x0B, {3, 2}, values<std::int16_t>(6, 300, true)));
    save("idx", "i32_labels", std::string(1, '\0') + idx(0x0C, {4}, values<std::int32_t>(4, 1, true)));
    save("idx", "f32", std::string(1, '\0') + idx(0x0D, {2, 3}, values<float>(6, 0.5f, true)));
    save("idx", "f64", std::string(1, '\0') + idx(0x0E, {2, 2}, values<double>(4, 0.5, true)));
    save("idx", "truncated", std::string(1, '\0') + images.substr(0, images.size() - 5));
    save("idx", "truncated.gz", std::string(1, '\0') + gzip(images).substr(0, 30));
    save("idx", "zero_rows", std::string(1, '\0') + idx(0x08, {0, 28, 28}, ""));
    save("idx", "absurd_dims", std::string(1, '\1') + idx(0x08, {0xffffffffu, 0xffffffffu, 2}, bytes_of(8)));

    // --- images (mode byte: bit 0 channels 3, bits 1-3 geometry, bit 4 chw; fuzz_image.cpp) ---
    const std::string rgb_crop(1, '\x07'), gray_resize(1, '\x02'), rgb_chw(1, '\x17'), rgb_pad(1, '\x09');
    const std::string baseline = jpeg(20, 30, JCS_RGB, 3, false, false);
    save("image", "jpeg_420", rgb_crop + baseline);
    save("image", "jpeg_444_progressive", rgb_chw + jpeg(17, 9, JCS_RGB, 3, true, true));
    save("image", "jpeg_gray", gray_resize + jpeg(8, 13, JCS_GRAYSCALE, 1, false, false));
    save("image", "jpeg_cmyk", rgb_pad + jpeg(11, 6, JCS_CMYK, 4, false, false));
    save("image", "jpeg_progressive_gray_out", gray_resize + jpeg(16, 16, JCS_RGB, 3, true, false));
    save("image", "jpeg_truncated", rgb_crop + baseline.substr(0, baseline.size() / 2));
    save("image", "jpeg_ycck", rgb_crop + jpeg(10, 14, JCS_CMYK, 4, false, false, JCS_YCCK));
    save("image", "jpeg_arithmetic", rgb_chw + jpeg(12, 9, JCS_RGB, 3, false, false, JCS_UNKNOWN, true));
    save("image", "jpeg_arithmetic_progressive", gray_resize + jpeg(9, 12, JCS_RGB, 3, true, false, JCS_UNKNOWN, true));
    save("image", "png_rgb", rgb_crop + png(12, 10, PNG_COLOR_TYPE_RGB, 8, false));
    save("image", "png_rgba16_interlaced", rgb_chw + png(9, 11, PNG_COLOR_TYPE_RGB_ALPHA, 16, true));
    save("image", "png_gray16", gray_resize + png(7, 5, PNG_COLOR_TYPE_GRAY, 16, false));
    save("image", "png_gray2_interlaced", rgb_pad + png(10, 3, PNG_COLOR_TYPE_GRAY, 2, true));
    save("image", "png_gray_alpha", rgb_crop + png(6, 6, PNG_COLOR_TYPE_GRAY_ALPHA, 8, false));
    save("image", "png_palette4_trns", rgb_crop + png(5, 9, PNG_COLOR_TYPE_PALETTE, 4, false));
    save("image", "png_palette8_interlaced", gray_resize + png(13, 4, PNG_COLOR_TYPE_PALETTE, 8, true));
    const std::string rgb_png = png(12, 10, PNG_COLOR_TYPE_RGB, 8, false);
    save("image", "png_truncated", rgb_crop + rgb_png.substr(0, rgb_png.size() - 20));
    save("image", "bmp_header", rgb_crop + "BM" + bytes_of(60));
    save("image", "empty", rgb_crop);

    // --- checkpoints (mode byte: bits 0-2 kind, bit 4 reframed) ------------------------
    {
        moment_options o;
        o.dim = 4;
        o.targets = target_mode::class_ids;
        o.classes = 2;
        moment_accumulator m(o);
        const auto x = data(5, 4);
        const std::int64_t y[5] = {0, 1, 1, 0, 1};
        m.update(batch_view(x.data(), 5, 4), target_view::class_ids(y, 5));
        checkpoint_seeds("moments_labels", 0, state(m));
        moment_options u;
        u.dim = 3;
        moment_accumulator plain(u);
        checkpoint_seeds("moments_empty", 0, state(plain));
    }
    {
        frequent_directions_options o;
        o.dim = 5;
        o.ell = 2;
        frequent_directions fd(o);
        const auto x = data(7, 5);
        fd.update(batch_view(x.data(), 7, 5));
        checkpoint_seeds("frequent_directions", 1, state(fd));
    }
    {
        nystrom_options o;
        o.dim = 5;
        o.rank = 2;
        o.oversampling = 1;
        o.probes = 2;
        o.seed = 3;
        nystrom_sketch ny(o);
        const auto x = data(6, 5);
        ny.update(batch_view(x.data(), 6, 5));
        checkpoint_seeds("nystrom", 2, state(ny));
    }
    {
        tracker_options o;
        o.dim = 4;
        o.classes = 2;
        o.shape = image_shape{2, 2, 1, image_layout::hwc};
        o.noises = {parse_noise_spec("gaussian:sigma=0.5"), parse_noise_spec("dropout:ratio=0.25")};
        alignment_tracker t(o);
        const auto x = data(6, 4);
        const std::int64_t y[6] = {0, 1, 0, 1, 1, 0};
        t.update(batch_view(x.data(), 6, 4), target_view::class_ids(y, 6));
        checkpoint_seeds("tracker_closed_form", 3, state(t));
        o.noises = {parse_noise_spec("mask:patch=1x1,ratio=0.5,scheme=fixed,draws=2,seed=7")};
        try {
            alignment_tracker mc(o);
            mc.update(batch_view(x.data(), 6, 4), target_view::class_ids(y, 6));
            checkpoint_seeds("tracker_monte_carlo", 3, state(mc));
        } catch (const std::exception& e) {
            std::cerr << "no Monte-Carlo tracker seed: " << e.what() << "\n";
        }
    }

    {
        class_moments cm({4, 3});
        const auto x = data(5, 4);
        const std::int64_t y[5] = {2, 0, 2, 2, 0};  // class 1 unseen: a zero row of means
        cm.update(batch_view(x.data(), 5, 4), target_view::class_ids(y, 5));
        checkpoint_seeds("class_moments", 4, state(cm));
    }

    // --- CIFAR records (mode byte first: see fuzz_cifar.cpp) ---------------------------
    {
        auto record = [](bool hundred, int coarse, int fine) {
            std::string r(1, static_cast<char>(coarse));
            if (hundred) r += static_cast<char>(fine);
            return r + bytes_of(3072);
        };
        save("cifar", "cifar10_two", std::string(1, '\0') + record(false, 3, 0) + record(false, 9, 0));
        save("cifar", "cifar10_gray_chw_crop", std::string(1, '\x1c') + record(false, 1, 0));
        save("cifar", "cifar100_coarse_resize", std::string(1, '\x23') + record(true, 19, 99) + record(true, 0, 5));
        save("cifar", "cifar100_fine_pad", std::string(1, '\x31') + record(true, 4, 42));
        save("cifar", "cifar10_bad_label", std::string(1, '\0') + record(false, 10, 0));
        save("cifar", "cifar10_cut", std::string(1, '\0') + record(false, 2, 0).substr(0, 3000));
    }

    // --- list files (fuzz_list.cpp: the text as is) ------------------------------------
    save("list", "ids", "a/0.png 0\nb/1.jpg 1\n\n# comment\nc/2.png 2\n");
    save("list", "names_tabs", "val_0.JPEG\tn03444034\t0\t32\t44\t62\nval_1.JPEG\tn04067472\t52\t55\t57\t59\r\n");
    save("list", "mixed", "a.png 1\nb.png cat\n");
    save("list", "one_field", "a.png\n");
    save("list", "huge_label", "a.png 99999999999999999999\n");
    save("list", "spaces_in_tab_path", "my dir/a b.png\tdog\n");

    // --- noise specs ------------------------------------------------------------------
    const char* specs[] = {
        "gaussian:sigma=0.1",
        "dropout:ratio=0.3",
        "mask:patch=2x2,ratio=0.5,scheme=fixed",
        "mask:patch=4,ratio=0.75,scheme=bernoulli,shape=28x28x1,layout=hwc",
        "mask:patch=2x2,ratio=0.5,scheme=fixed,shape=32x32x3,layout=chw,draws=64,seed=7",
        "gaussian:sigma=1e-300",
        "dropout:ratio=0.999999999999",
        "gaussian:sigma=0.1,draws=8,seed=18446744073709551615",
        "mask:patch=1x3,ratio=0,scheme=fixed,shape=3x3",
        "gaussian:sigma=",
        "mask:patch=99999999999999999999x2,ratio=0.5",
    };
    int i = 0;
    for (const char* s : specs) save("noise_spec", "spec" + std::to_string(i++), s);
    return 0;
}

// Unit tests of io/image.hpp on the C++ surface: the geometry's checks and sizes, the
// extension list, refusals naming the file (missing, empty, not an image, an oversized
// header refused before anything is allocated, rows of another size), properties of the
// resample (a constant image stays constant, CHW is HWC transposed), and buffer reuse.
// Pixel equality with PIL and torchvision is tests/io/test_image_pixels.py.
#include <catch2/catch.hpp>

#include <png.h>
#include <unistd.h>
#include <zlib.h>

#include <cmath>
#include <fstream>
#include <string>
#include <tuple>
#include <vector>

#include "../common/temp_dir.hpp"

#include <recalign/core/errors.hpp>
#include <recalign/io/image.hpp>

using namespace recalign;

namespace {

// One directory for the whole run, removed with its files when the run ends.
std::string temp_path(const std::string& name) {
    static const testing::temp_dir dir("recalign-image");
    return dir.path + "/" + name;
}

void write_bytes(const std::string& path, const std::string& bytes) {
    std::ofstream os(path, std::ios::binary);
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
}

// An 8-bit RGB (or gray) PNG written by libpng's own writer.
std::string png_bytes(std::size_t h, std::size_t w, std::size_t c, const std::vector<std::uint8_t>& px) {
    png_structp p = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png_create_info_struct(p);
    std::string out;
    png_set_write_fn(p, &out, [](png_structp q, png_bytep d, png_size_t n) {
        static_cast<std::string*>(png_get_io_ptr(q))->append(reinterpret_cast<char*>(d), n);
    }, nullptr);
    png_set_IHDR(p, info, static_cast<png_uint_32>(w), static_cast<png_uint_32>(h), 8,
                 c == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE, PNG_COMPRESSION_TYPE_DEFAULT,
                 PNG_FILTER_TYPE_DEFAULT);
    png_write_info(p, info);
    for (std::size_t y = 0; y < h; ++y) png_write_row(p, const_cast<png_bytep>(px.data() + y * w * c));
    png_write_end(p, nullptr);
    png_destroy_write_struct(&p, &info);
    return out;
}

std::vector<std::uint8_t> ramp(std::size_t n) {
    std::vector<std::uint8_t> v(n);
    for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>((i * 31 + i / 7) & 0xff);
    return v;
}

io::image decode(const std::string& bytes, int channels) {
    io::image im;
    io::decode_image(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size(), channels, im, "mem.png");
    return im;
}

}  // namespace

TEST_CASE("image_geometry::validate refuses what no image can satisfy", "[image]") {
    io::image_geometry g;
    g.validate();
    g.channels = 4;
    CHECK_THROWS_AS(g.validate(), std::invalid_argument);
    g.channels = 1;
    g.crop_h = 5;
    CHECK_THROWS_WITH(g.validate(), Catch::Contains("both sides"));
    g.crop_w = 5;
    g.validate();
    g.resize = io::max_image_side + 1;
    CHECK_THROWS_AS(g.validate(), std::invalid_argument);
}

TEST_CASE("output_size: the short side becomes S, the long side S * long / short truncated, then the crop", "[image]") {
    io::image_geometry g;
    CHECK(io::output_size(375, 500, g) == std::pair<std::size_t, std::size_t>(375, 500));
    for (std::size_t s : {1u, 7u, 64u, 256u, 1000u})
        for (auto [h, w] : std::vector<std::pair<std::size_t, std::size_t>>{{375, 500}, {500, 375}, {333, 333}, {1, 97}, {97, 1}}) {
            g.resize = s;
            const auto [oh, ow] = io::output_size(h, w, g);
            const std::size_t short_out = h <= w ? oh : ow, long_out = h <= w ? ow : oh;
            CHECK(short_out == s);
            const double exact = static_cast<double>(s) * static_cast<double>(std::max(h, w)) / static_cast<double>(std::min(h, w));
            CHECK(long_out == static_cast<std::size_t>(std::floor(exact)));
            g.crop_h = 3;
            g.crop_w = 11;
            CHECK(io::output_size(h, w, g) == std::pair<std::size_t, std::size_t>(3, 11));
            g.crop_h = g.crop_w = 0;
        }
}

TEST_CASE("is_image_extension takes torchvision's IMG_EXTENSIONS, any case", "[image]") {
    for (const char* f : {"a.jpg", "b.JPEG", "c/d.Png", "e.ppm", "f.bmp", "g.pgm", "h.tif", "i.TIFF", "j.webp"})
        CHECK(io::is_image_extension(f));
    for (const char* f : {"a.gif", "jpg", "b.jpg.txt", "c.pngx", "", "README"}) CHECK_FALSE(io::is_image_extension(f));
}

TEST_CASE("decode_file names the file: missing, empty, not an image, rows of another size", "[image]") {
    io::image_geometry g;
    std::vector<std::uint8_t> bytes, out(4 * 6 * 3);
    io::image decoded, scratch;
    CHECK_THROWS_AS(io::decode_file(temp_path("missing.png"), g, bytes, decoded, scratch, out.data(), out.size()), file_error);
    write_bytes(temp_path("empty.jpg"), "");
    CHECK_THROWS_WITH(io::decode_file(temp_path("empty.jpg"), g, bytes, decoded, scratch, out.data(), out.size()),
                      Catch::Contains("empty.jpg") && Catch::Contains("empty file"));
    write_bytes(temp_path("text.png"), "hello, not a picture");
    CHECK_THROWS_WITH(io::decode_file(temp_path("text.png"), g, bytes, decoded, scratch, out.data(), out.size()),
                      Catch::Contains("text.png") && Catch::Contains("not a JPEG or PNG"));
    const std::string png = png_bytes(5, 6, 3, ramp(90));
    write_bytes(temp_path("five_rows.png"), png);
    CHECK_THROWS_WITH(io::decode_file(temp_path("five_rows.png"), g, bytes, decoded, scratch, out.data(), out.size()),
                      Catch::Contains("five_rows.png") && Catch::Contains("5x6"));
    g.crop_h = 4;
    g.crop_w = 6;
    io::decode_file(temp_path("five_rows.png"), g, bytes, decoded, scratch, out.data(), out.size());
    // Crop 4 of 5 rows: offset int(round(0.5)) = 0 (Python rounds halves to even).
    const auto px = ramp(90);
    CHECK(std::vector<std::uint8_t>(out.begin(), out.end()) == std::vector<std::uint8_t>(px.begin(), px.begin() + 72));
}

TEST_CASE("image_size reads the header alone, with decode_image's checks and errors", "[image]") {
    const std::string png = png_bytes(5, 6, 3, ramp(90));
    const auto* p = reinterpret_cast<const std::uint8_t*>(png.data());
    CHECK(io::image_size(p, png.size(), "a.png") == std::pair<std::size_t, std::size_t>(5, 6));
    // The image data cut short: the decoder refuses it, the header still gives the size.
    const std::size_t cut = png.size() - 20;
    io::image im;
    CHECK_THROWS_AS(io::decode_image(p, cut, 3, im, "cut.png"), file_error);
    CHECK(io::image_size(p, cut, "cut.png") == std::pair<std::size_t, std::size_t>(5, 6));
    CHECK_THROWS_WITH(io::image_size(p, 20, "head.png"), Catch::Contains("head.png") && Catch::Contains("corrupt PNG"));
    const std::string text = "hello, not a picture";
    CHECK_THROWS_WITH(io::image_size(reinterpret_cast<const std::uint8_t*>(text.data()), text.size(), "t.png"),
                      Catch::Contains("t.png") && Catch::Contains("not a JPEG or PNG"));
    CHECK_THROWS_WITH(io::image_size(p, 0, "e.png"), Catch::Contains("empty file"));
}

TEST_CASE("an oversized header is refused before anything is allocated", "[image]") {
    std::string png = png_bytes(1, 1, 1, {7});
    auto put32 = [&](std::size_t at, std::uint32_t v) {
        for (int i = 0; i < 4; ++i) png[at + static_cast<std::size_t>(i)] = static_cast<char>((v >> (24 - 8 * i)) & 0xff);
    };
    for (auto [h, w, what] : std::vector<std::tuple<std::uint32_t, std::uint32_t, const char*>>{
             {1, 70000, "above 65536"}, {20000, 20000, "decompression-bomb"}}) {
        put32(16, w);
        put32(20, h);
        // IHDR's CRC over type + data (bytes 12..28), as a valid file would carry.
        const std::uint32_t crc = static_cast<std::uint32_t>(
            crc32(0L, reinterpret_cast<const Bytef*>(png.data() + 12), 17));
        put32(29, crc);
        io::image im;
        CHECK_THROWS_WITH(io::decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), 3, im, "big.png"),
                          Catch::Contains("big.png") && Catch::Contains(what));
        CHECK(im.pixels.capacity() == 0);
        CHECK_THROWS_WITH(io::image_size(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), "big.png"),
                          Catch::Contains("big.png") && Catch::Contains(what));
    }
}

TEST_CASE("resample properties: a constant image stays constant; chw is hwc transposed", "[image]") {
    for (auto [h, w] : std::vector<std::pair<std::size_t, std::size_t>>{{37, 53}, {5, 120}, {64, 64}, {3, 2}}) {
        std::vector<std::uint8_t> flat(h * w * 3);
        for (std::size_t i = 0; i < flat.size(); ++i) flat[i] = static_cast<std::uint8_t>(40 + 100 * (i % 3));
        const io::image in = decode(png_bytes(h, w, 3, flat), 3);
        io::image scratch;
        for (std::size_t s : {1u, 4u, 17u, 90u}) {
            io::image_geometry g;
            g.resize = s;
            g.crop_h = s + 2;  // pads rows of zeros where the resized height is below s + 2
            g.crop_w = s;
            const auto [oh, ow] = io::output_size(h, w, g);
            io::image_geometry resize_only = g;
            resize_only.crop_h = resize_only.crop_w = 0;
            const std::size_t rh = io::output_size(h, w, resize_only).first;
            const std::size_t pad_top = oh > rh ? (oh - rh) / 2 : 0;  // CenterCrop pads (crop - size) // 2 above
            std::vector<std::uint8_t> hwc(oh * ow * 3), chw(hwc.size());
            io::transform_image(in, g, scratch, hwc.data(), hwc.size());
            g.layout = image_layout::chw;
            io::transform_image(in, g, scratch, chw.data(), chw.size());
            for (std::size_t y = 0; y < oh; ++y)
                for (std::size_t x = 0; x < ow; ++x)
                    for (std::size_t c = 0; c < 3; ++c) {
                        const std::uint8_t v = hwc[(y * ow + x) * 3 + c];
                        REQUIRE(v == chw[(c * oh + y) * ow + x]);
                        const bool padded = oh > rh && (y < pad_top || y >= pad_top + rh);
                        REQUIRE(v == (padded ? 0 : 40 + 100 * c));
                    }
        }
    }
}

TEST_CASE("buffers are reused: the same sizes again allocate nothing", "[image]") {
    const std::string png = png_bytes(30, 41, 3, ramp(30 * 41 * 3));
    io::image im, scratch;
    io::image_geometry g;
    g.resize = 13;
    g.crop_h = g.crop_w = 12;
    std::vector<std::uint8_t> out(12 * 12 * 3), again(out.size());
    io::decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), 3, im, "a.png");
    io::transform_image(im, g, scratch, out.data(), out.size());
    const auto* pixels = im.pixels.data();
    const auto* mid = scratch.pixels.data();
    const auto* weights = scratch.cols.weights.data();
    io::decode_image(reinterpret_cast<const std::uint8_t*>(png.data()), png.size(), 3, im, "a.png");
    io::transform_image(im, g, scratch, again.data(), again.size());
    CHECK(im.pixels.data() == pixels);
    CHECK(scratch.pixels.data() == mid);
    CHECK(scratch.cols.weights.data() == weights);
    CHECK(out == again);
    // Wrong output size or channels: refused, naming the sizes.
    CHECK_THROWS_AS(io::transform_image(im, g, scratch, out.data(), out.size() - 1), std::invalid_argument);
    g.channels = 1;
    CHECK_THROWS_AS(io::transform_image(im, g, scratch, out.data(), 12 * 12), std::invalid_argument);
}

TEST_CASE("the coefficient tables cover only what the crop keeps: a thin image upscaled stays small", "[image]") {
    const std::string png = png_bytes(1, 4000, 1, ramp(4000));
    const io::image in = decode(png, 1);
    io::image scratch;
    io::image_geometry g;
    g.channels = 1;
    g.resize = 1000;  // 1 x 4000 -> 1000 x 4,000,000 before the crop
    g.crop_h = g.crop_w = 8;
    std::vector<std::uint8_t> out(64);
    io::transform_image(in, g, scratch, out.data(), out.size());
    CHECK(scratch.cols.first.size() == 8);
    CHECK(scratch.rows.first.size() == 8);
    CHECK(scratch.cols.weights.size() == 8 * scratch.cols.taps);
    // Upscaling one row: every output row of the kept window equals the first.
    for (std::size_t y = 1; y < 8; ++y)
        CHECK(std::vector<std::uint8_t>(out.begin() + static_cast<long>(8 * y), out.begin() + static_cast<long>(8 * y + 8)) ==
              std::vector<std::uint8_t>(out.begin(), out.begin() + 8));
}

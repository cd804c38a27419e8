// Writes the seed corpora of the fuzz harnesses (tests/fuzz/corpus/<harness>/): small valid
// files of every kind the readers accept, made with the library's own writers where it has
// them, and a few slightly broken ones. Regenerate with
//
//   ninja -C build-fuzz tests/fuzz/fuzz-make-seeds && build-fuzz/tests/fuzz/fuzz-make-seeds tests/fuzz/corpus
//
// (the regression/ folders are not touched). Inputs of the idx and checkpoint harnesses
// start with the harness's mode byte (see fuzz_idx.cpp, fuzz_checkpoint.cpp).
#include <zlib.h>

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

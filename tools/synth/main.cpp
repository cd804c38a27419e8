// recalign-synth: synthetic natural-image-like u8 images with labels (synth.hpp), as raw
// rows for `recalign --format raw` and an IDX (or .npy) file of labels. Benchmarks and the
// accuracy tests of the high-D routes use it; see README "Synthetic data".
#include <CLI/CLI.hpp>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <memory>
#include <string>
#include <system_error>
#include <vector>

#include "recalign/core/checked.hpp"
#include "recalign/io/files.hpp"
#include "synth.hpp"

namespace {

using recalign::checkpoint::atomic_writer;

bool ends_with(const std::string& s, const std::string& suffix) {
    return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

// Header of a 1-d array of n labels, u8 (`wide` false) or 16-bit (`wide`: .npy '<u2', IDX
// type 0x0B, a big-endian signed short): IDX (magic 0x000008TT, big-endian count) or .npy 1.0.
std::string labels_header(const std::string& path, std::uint64_t n, bool wide) {
    if (ends_with(path, ".npy")) {
        std::string dict = std::string("{'descr': '") + (wide ? "<u2" : "|u1") + "', 'fortran_order': False, 'shape': (" +
                           std::to_string(n) + ",), }";
        const std::size_t unpadded = 10 + dict.size() + 1;
        dict.append((64 - unpadded % 64) % 64, ' ');
        dict.push_back('\n');
        std::string h("\x93NUMPY\x01\x00", 8);
        h.push_back(static_cast<char>(dict.size() & 0xff));
        h.push_back(static_cast<char>(dict.size() >> 8));
        return h + dict;
    }
    if (n > 0xffffffffULL) throw std::invalid_argument("--rows " + std::to_string(n) + " exceeds the IDX limit 2^32 - 1 (use a .npy labels file)");
    std::string h{'\0', '\0', wide ? '\x0B' : '\x08', '\x01'};
    for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<char>((n >> s) & 0xff));
    return h;
}

void write_stdout(const unsigned char* p, std::size_t bytes) {
    std::size_t done = 0;
    while (done < bytes) {
        const ssize_t w = ::write(1, p + done, bytes - done);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw std::system_error(errno, std::generic_category(), "cannot write the images to standard output");
        }
        done += static_cast<std::size_t>(w);
    }
}

}  // namespace

int main(int argc, char** argv) {
    CLI::App app{"recalign-synth: synthetic natural-image-like u8 images (1/f² power spectrum, H x W x C, channels "
                 "last) of C classes that differ only by a small white pattern, i.e. mostly in low-variance "
                 "directions. Row i depends only on (--seed, i)."};
    recalign::synth::config c;
    std::uint64_t rows = 0, first_row = 0;
    double downsample = 1.0;
    std::string output, labels;
    app.add_option("--rows", rows, "Number of images N")->required();
    app.add_option("--first-row", first_row, "Index of the first image (shards: the same rows as one long run)");
    app.add_option("--height", c.height, "Image height H (before --downsample)")->required();
    app.add_option("--width", c.width, "Image width W (before --downsample)")->required();
    app.add_option("--channels", c.channels, "Channels C")->capture_default_str();
    app.add_option("--classes", c.classes,
                   "Number of classes: labels are u8 up to 256 classes, 16-bit above (at most 65,535 with a .npy "
                   "labels file, 32,767 with IDX)")
        ->capture_default_str();
    app.add_option("--seed", c.seed, "Seed")->capture_default_str();
    app.add_option("--downsample", downsample,
                   "Box-average the same images by F (H/F and W/F must be whole numbers): each output pixel is the "
                   "mean of its F x F square, a pixel cut by the square's edge weighted by the area inside it, "
                   "rounded to the nearest grey level; e.g. 224x224 with F = 7 -> 32x32, F = 3.5 -> 64x64. For a "
                   "whole F this is PIL's Image.BOX (to 1 grey level); for a fractional F it is not (PIL's BOX "
                   "weights whole pixels: up to 25 grey levels apart at F = 3.5), it is PIL's BOX by 2F of the "
                   "image doubled by pixel replication")
        ->capture_default_str();
    app.add_option("--class-amplitude", c.class_amplitude, "Grey levels of the ±1 class pattern")->capture_default_str();
    app.add_option("--output", output, "Images: raw u8 rows, or '-' for standard output")->required();
    app.add_option("--labels", labels, "Labels (one per image): IDX, or .npy if the name ends in .npy")->required();
    CLI11_PARSE(app, argc, argv);

    try {
        // Refused before anything is generated or written.
        if (rows == 0) throw std::invalid_argument("--rows must be positive");
        const bool npy_labels = ends_with(labels, ".npy"), wide = c.classes > 256;
        const std::size_t max_classes = npy_labels ? 65535 : 32767;
        if (c.classes == 0 || c.classes > max_classes)
            throw std::invalid_argument("--classes must be in [1, " + std::to_string(max_classes) + "] with " +
                                        (npy_labels ? "a .npy" : "an IDX") + " labels file");
        if (!(c.class_amplitude >= 0)) throw std::invalid_argument("--class-amplitude must be non-negative");
        recalign::checked_add(first_row, rows, "--first-row + --rows");
        recalign::synth::box_downsampler down(c.height, c.width, c.channels, downsample);
        const std::size_t out_dim = recalign::checked_elements<unsigned char>(
            {down.out_height(), down.out_width(), c.channels}, "output image size");
        const std::uint64_t total = recalign::checked_mul(rows, out_dim, "output bytes");
        const std::string header = labels_header(labels, rows, wide);
        if (output == labels) throw std::invalid_argument("--output and --labels name the same file " + output);

        std::unique_ptr<atomic_writer> images;
        if (output != "-") images = std::make_unique<atomic_writer>(output);
        atomic_writer label_file(labels);
        label_file.write(header.data(), header.size());

        const std::clock_t cpu0 = std::clock();
        const auto t0 = std::chrono::steady_clock::now();
        const recalign::synth::generator gen(c);
        const auto t1 = std::chrono::steady_clock::now();
        const bool resize = downsample != 1.0;
        const std::size_t block = 16;
        const std::size_t label_bytes = wide ? 2 : 1;
        std::vector<unsigned char> full(gen.dim()), buf(block * out_dim), lab(block * label_bytes);
        std::vector<float> work, work2;
        for (std::uint64_t r = 0; r < rows; r += block) {
            const std::size_t n = static_cast<std::size_t>(std::min<std::uint64_t>(block, rows - r));
            for (std::size_t i = 0; i < n; ++i) {
                const std::uint64_t row = first_row + r + i;
                if (resize) {
                    gen.render(row, full.data(), work);
                    down.apply(full.data(), buf.data() + i * out_dim, work2);
                } else {
                    gen.render(row, buf.data() + i * out_dim, work);
                }
                const std::uint32_t y = gen.label(row);
                if (!wide) lab[i] = static_cast<unsigned char>(y);
                else if (npy_labels) { lab[2 * i] = static_cast<unsigned char>(y & 0xff); lab[2 * i + 1] = static_cast<unsigned char>(y >> 8); }
                else { lab[2 * i] = static_cast<unsigned char>(y >> 8); lab[2 * i + 1] = static_cast<unsigned char>(y & 0xff); }
            }
            if (images) images->write(buf.data(), n * out_dim);
            else write_stdout(buf.data(), n * out_dim);
            label_file.write(lab.data(), n * label_bytes);
        }
        if (images) images->commit();
        label_file.commit();
        const auto t2 = std::chrono::steady_clock::now();
        const double cpu_s = static_cast<double>(std::clock() - cpu0) / CLOCKS_PER_SEC;
        const double bank_s = std::chrono::duration<double>(t1 - t0).count();
        const double gen_s = std::chrono::duration<double>(t2 - t1).count();
        std::cerr << "recalign-synth: " << rows << " images of " << down.out_height() << "x" << down.out_width() << "x"
                  << c.channels << " u8 (" << total << " bytes) to " << output << ", labels to " << labels << "; bank "
                  << bank_s << " s, images " << gen_s << " s wall (" << static_cast<double>(rows) / gen_s
                  << " rows/s); CPU time of this process in all " << cpu_s << " s. Read with: --format raw --raw-shape " << rows << "," << out_dim
                  << " --raw-dtype u8 --image-shape " << down.out_height() << "," << down.out_width() << ","
                  << c.channels << "\n";
        return 0;
    } catch (const std::exception& e) {
        std::cerr << "recalign-synth: error: " << e.what() << "\n";
        return 2;
    }
}

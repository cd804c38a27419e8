// Synthetic natural-image-like data for benchmarks at any resolution (recalign-synth).
//
// Every image is a sum of a few randomly shifted (cyclically) and signed copies of textures
// from a bank drawn once with a 1/f amplitude spectrum (1/f² power, like natural images;
// cyclic shifts and sign changes keep the power spectrum), mapped to grey levels around
// 128, plus a small class-specific pattern of independent ±1 pixels: a white spectrum, so
// against the 1/f² images the classes differ mostly in the LOW-variance (high-frequency)
// directions. Row i is a pure function of (seed, i) (core/rng.hpp), so any range of rows
// is reproducible on its own.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace recalign::synth {

struct config {
    std::size_t height = 32, width = 32, channels = 3, classes = 10;
    std::uint64_t seed = 0;
    std::size_t bank = 16;            // textures in the bank
    std::size_t layers = 4;           // shifted textures summed per image
    double contrast = 36.0;           // grey levels per unit texture standard deviation
    double chroma = 0.35;             // weight of the per-channel texture (colour)
    double class_amplitude = 4.0;     // grey levels of the ±1 class pattern
};

class generator {
public:
    explicit generator(const config& c);
    const config& cfg() const noexcept { return c_; }
    std::size_t dim() const noexcept { return c_.height * c_.width * c_.channels; }
    // Class of row `row`, in [0, classes).
    std::uint32_t label(std::uint64_t row) const;
    // Row `row` as u8, H x W x C (channels last), into out[0, dim()). `work` is scratch.
    void render(std::uint64_t row, unsigned char* out, std::vector<float>& work) const;

private:
    config c_;
    std::vector<float> bank_;      // bank x (H x W), unit variance each
    // classes x (H x W x C) signs of the ±class_amplitude pattern, one bit each (set: +), so
    // 1,000 classes at 224x224x3 take 19 MB instead of 602 MB of floats.
    std::vector<std::uint64_t> pattern_bits_;
    std::size_t pattern_words_ = 0;  // 64-bit words per class
};

// Area-weighted box downsampling by a factor f ≥ 1 (H/f and W/f integers): each output
// pixel is the mean of the input over its f x f square (fractional pixels weighted by their
// covered area), rounded to the nearest grey level. PIL's Image.BOX for a whole f; for a
// fractional f PIL's BOX (whole pixels) differs, this is PIL's BOX by 2f of the image doubled
// by pixel replication (tests/cli/test_synth.py).
class box_downsampler {
public:
    box_downsampler(std::size_t height, std::size_t width, std::size_t channels, double factor);
    std::size_t out_height() const noexcept { return oh_; }
    std::size_t out_width() const noexcept { return ow_; }
    void apply(const unsigned char* in, unsigned char* out, std::vector<float>& work) const;

private:
    struct tap { std::size_t first = 0; std::vector<float> w; };
    static std::vector<tap> taps(std::size_t in, std::size_t out, double factor);
    std::size_t h_, w_, c_, oh_, ow_;
    std::vector<tap> rows_, cols_;
};

}  // namespace recalign::synth

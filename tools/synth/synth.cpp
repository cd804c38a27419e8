#include "synth.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <stdexcept>

#include "recalign/core/blas.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/rng.hpp"

namespace recalign::synth {

namespace {
// Stream domains (rng::stream's `a`): one per kind of draw, so none shares numbers.
constexpr std::uint64_t bank_domain = 0, row_domain = 1, pattern_domain = 2;
constexpr double two_pi = 6.283185307179586476925286766559;

// cos and sin of 2π j k / n, n x n row-major (symmetric).
void dft_matrices(std::size_t n, std::vector<double>& c, std::vector<double>& s) {
    c.resize(n * n);
    s.resize(n * n);
    for (std::size_t j = 0; j < n; ++j)
        for (std::size_t k = 0; k < n; ++k) {
            const double a = two_pi * static_cast<double>((j * k) % n) / static_cast<double>(n);
            c[j * n + k] = std::cos(a);
            s[j * n + k] = std::sin(a);
        }
}

// Signed frequency of DFT index k of n, in cycles per pixel.
double frequency(std::size_t k, std::size_t n) {
    const double kk = k <= n / 2 ? static_cast<double>(k) : static_cast<double>(k) - static_cast<double>(n);
    return kk / static_cast<double>(n);
}
}  // namespace

generator::generator(const config& c) : c_(c) {
    if (c.height == 0 || c.width == 0 || c.channels == 0 || c.classes == 0 || c.bank == 0 || c.layers == 0)
        throw std::invalid_argument("synth: height, width, channels, classes, bank and layers must be positive");
    const std::size_t h = c.height, w = c.width, hw = checked_elements<double>({h, w}, "synth texture");
    const std::size_t d = checked_elements<float>({h, w, c.channels}, "synth image");
    bank_.resize(checked_elements<float>({c.bank, hw}, "synth texture bank"));
    pattern_words_ = d / 64 + (d % 64 != 0);
    pattern_bits_.assign(checked_elements<std::uint64_t>({c.classes, pattern_words_}, "synth class patterns"), 0);

    // Texture k = Re(F_H Z F_W) for complex white noise Z shaped by 1/|f| (zero at DC):
    // a stationary Gaussian field with power spectrum 1/|f|², by four real products.
    std::vector<double> ch, sh, cw, sw;
    dft_matrices(h, ch, sh);
    dft_matrices(w, cw, sw);
    std::vector<double> zr(hw), zi(hw), mr(hw), mi(hw), x(hw);
    for (std::size_t k = 0; k < c.bank; ++k) {
        const rng::stream r(c.seed, bank_domain, k);
        for (std::size_t i = 0; i < h; ++i)
            for (std::size_t j = 0; j < w; ++j) {
                const double fy = frequency(i, h), fx = frequency(j, w), f = std::sqrt(fx * fx + fy * fy);
                const double amp = f > 0 ? 1.0 / f : 0.0;
                zr[i * w + j] = amp * r.normal(2 * (i * w + j));
                zi[i * w + j] = amp * r.normal(2 * (i * w + j) + 1);
            }
        blas::gemm_nn(h, w, h, 1.0, ch.data(), zr.data(), 0.0, mr.data());   // Re(F_H Z)
        blas::gemm_nn(h, w, h, -1.0, sh.data(), zi.data(), 1.0, mr.data());
        blas::gemm_nn(h, w, h, 1.0, ch.data(), zi.data(), 0.0, mi.data());   // Im(F_H Z)
        blas::gemm_nn(h, w, h, 1.0, sh.data(), zr.data(), 1.0, mi.data());
        blas::gemm_nn(h, w, w, 1.0, mr.data(), cw.data(), 0.0, x.data());    // Re(F_H Z F_W)
        blas::gemm_nn(h, w, w, -1.0, mi.data(), sw.data(), 1.0, x.data());
        double mean = 0, sq = 0;
        for (double v : x) mean += v;
        mean /= static_cast<double>(hw);
        for (double v : x) sq += (v - mean) * (v - mean);
        const double scale = sq > 0 ? 1.0 / std::sqrt(sq / static_cast<double>(hw)) : 0.0;
        float* out = bank_.data() + k * hw;
        for (std::size_t i = 0; i < hw; ++i) out[i] = static_cast<float>((x[i] - mean) * scale);
    }
    for (std::size_t k = 0; k < c.classes; ++k) {
        const rng::stream r(c.seed, pattern_domain, k);
        std::uint64_t* p = pattern_bits_.data() + k * pattern_words_;
        for (std::size_t i = 0; i < d; ++i) p[i / 64] |= (r.bits(i) >> 63) << (i % 64);
    }
}

std::uint32_t generator::label(std::uint64_t row) const {
    return static_cast<std::uint32_t>(rng::stream(c_.seed, row_domain, row).bits(0) % c_.classes);
}

// Compiled twice, chosen at load time: AVX2 where the CPU has it (twice SSE2's floats an
// instruction; no FMA, which would round contrast · b + 128 once instead of twice: the same bytes).
[[gnu::target_clones("avx2", "default")]] void generator::render(std::uint64_t row, unsigned char* out,
                                                               std::vector<float>& work) const {
    const std::size_t h = c_.height, w = c_.width, ch = c_.channels, hw = h * w;
    const rng::stream r(c_.seed, row_domain, row);
    constexpr std::size_t group = 64;  // pixels of the last step at a time
    work.resize(hw * (ch + 1) + group * ch);  // luminance, colours, then a group of the last step
    std::fill(work.begin(), work.begin() + static_cast<std::ptrdiff_t>(hw * (ch + 1)), 0.0f);
    float* lum = work.data();
    // Adds weight x (texture `item` shifted cyclically by (dy, dx)) to dst: row by row, in
    // two contiguous pieces each.
    auto add_shifted = [&](float* dst, std::uint64_t bits, float weight) {
        const float* t = bank_.data() + (bits % c_.bank) * hw;
        const std::size_t dy = (bits >> 20) % h, dx = (bits >> 42) % w;
        for (std::size_t i = 0; i < h; ++i) {
            const float* src = t + ((i + dy) % h) * w;
            float* d = dst + i * w;
            for (std::size_t j = 0; j < w - dx; ++j) d[j] += weight * src[j + dx];
            for (std::size_t j = w - dx; j < w; ++j) d[j] += weight * src[j + dx - w];
        }
    };
    const float layer_scale = static_cast<float>(1.0 / std::sqrt(static_cast<double>(c_.layers)));
    for (std::size_t l = 0; l < c_.layers; ++l)
        add_shifted(lum, r.bits(1 + l), layer_scale * static_cast<float>(r.normal(64 + l)));
    if (ch > 1)
        for (std::size_t k = 0; k < ch; ++k)
            add_shifted(work.data() + (k + 1) * hw, r.bits(32 + k),
                        static_cast<float>(c_.chroma * r.normal(96 + k)));
    // The last step, 64 pixels (64 ch values, channels last) at a time: lum + colour into a
    // small buffer, then 128 + contrast · that + amplitude · (±1) clamped and rounded, four
    // values a vector, the signs four bits of the class pattern at a time (four values never
    // straddle a 64-bit word). The same operations in the same order as the scalar tail below,
    // so the same bytes at any width (tests/cli/test_synth.py pins them). One channel: lum
    // itself (128 + contrast · (±0) being 128 either way).
    const std::uint64_t* pattern = pattern_bits_.data() + static_cast<std::size_t>(label(row)) * pattern_words_;
    const float contrast = static_cast<float>(c_.contrast), amplitude = static_cast<float>(c_.class_amplitude);
    using f4 = float __attribute__((vector_size(16)));
    using i4 = std::int32_t __attribute__((vector_size(16)));
    using b4 = unsigned char __attribute__((vector_size(4)));
    static const std::vector<f4> unit_signs = [] {  // 4 bits -> ±1 each, lowest first
        std::vector<f4> t(16);
        for (unsigned v = 0; v < 16; ++v)
            for (unsigned b = 0; b < 4; ++b) t[v][b] = ((v >> b) & 1u) ? 1.0f : -1.0f;
        return t;
    }();
    // amplitude · (±1) is ±amplitude exactly. The clamps are std::max(0, v) and std::min(255, v)
    // as element-wise selects (GCC's vector extension: the compiler does not if-convert the
    // scalar ones, floating-point comparisons being allowed to trap); v + 0.5 lies in
    // [0.5, 255.5], where the conversion through int truncates as the direct one does.
    const f4 zero = {0.0f, 0.0f, 0.0f, 0.0f}, top = {255.0f, 255.0f, 255.0f, 255.0f};
    auto value = [&](float b, std::size_t e) {
        const float s = ((pattern[e / 64] >> (e % 64)) & 1u) ? amplitude : -amplitude;
        const float v = 128.0f + contrast * b + s;
        return static_cast<unsigned char>(std::min(255.0f, std::max(0.0f, v)) + 0.5f);
    };
    float* mixed = work.data() + hw * (ch + 1);
    const float* colour = work.data() + hw;
    std::size_t p = 0;
    for (std::size_t n = 0; (n = std::min(group, hw - p) / 4 * 4) > 0; p += n) {
        const float* b = lum + p;
        if (ch > 1) {  // read back by the next loop a group later than written: no store-forwarding stall
            for (std::size_t k = 0; k < ch; ++k)
                for (std::size_t l = 0; l < n; ++l) mixed[l * ch + k] = lum[p + l] + colour[k * hw + p + l];
            b = mixed;
        }
        for (std::size_t e = p * ch, i = 0; i < n * ch; e += 4, i += 4) {
            f4 x;
            std::memcpy(&x, b + i, sizeof x);
            const f4 s = amplitude * unit_signs[(pattern[e / 64] >> (e % 64)) & 0xfu];
            f4 v = 128.0f + contrast * x + s;
            v = v > zero ? v : zero;
            v = v < top ? v : top;
            const b4 q = __builtin_convertvector(__builtin_convertvector(v + 0.5f, i4), b4);
            std::memcpy(out + e, &q, sizeof q);
        }
    }
    for (; p < hw; ++p)
        for (std::size_t k = 0; k < ch; ++k)
            out[p * ch + k] = value(ch > 1 ? lum[p] + colour[k * hw + p] : lum[p], p * ch + k);
}

std::vector<box_downsampler::tap> box_downsampler::taps(std::size_t in, std::size_t out, double factor) {
    std::vector<tap> t(out);
    for (std::size_t o = 0; o < out; ++o) {
        const double lo = static_cast<double>(o) * factor, hi = std::min(lo + factor, static_cast<double>(in));
        const std::size_t first = static_cast<std::size_t>(std::floor(lo));
        t[o].first = first;
        for (std::size_t i = first; static_cast<double>(i) < hi && i < in; ++i) {
            const double a = std::max(lo, static_cast<double>(i)), b = std::min(hi, static_cast<double>(i + 1));
            if (b > a) t[o].w.push_back(static_cast<float>((b - a) / factor));
        }
    }
    return t;
}

box_downsampler::box_downsampler(std::size_t height, std::size_t width, std::size_t channels, double factor)
    : h_(height), w_(width), c_(channels) {
    if (!(factor >= 1.0)) throw std::invalid_argument("synth: --downsample must be at least 1");
    const double oh = static_cast<double>(height) / factor, ow = static_cast<double>(width) / factor;
    if (std::fabs(oh - std::round(oh)) > 1e-9 || std::fabs(ow - std::round(ow)) > 1e-9 || std::round(oh) < 1 ||
        std::round(ow) < 1)
        throw std::invalid_argument("synth: --downsample " + std::to_string(factor) + " does not divide " +
                                    std::to_string(height) + "x" + std::to_string(width) + " into whole pixels");
    oh_ = static_cast<std::size_t>(std::round(oh));
    ow_ = static_cast<std::size_t>(std::round(ow));
    rows_ = taps(height, oh_, factor);
    cols_ = taps(width, ow_, factor);
}

void box_downsampler::apply(const unsigned char* in, unsigned char* out, std::vector<float>& work) const {
    // Horizontal pass into work (H x OW x C), then vertical.
    work.assign(h_ * ow_ * c_, 0.0f);
    for (std::size_t i = 0; i < h_; ++i)
        for (std::size_t o = 0; o < ow_; ++o) {
            const tap& t = cols_[o];
            float* dst = work.data() + (i * ow_ + o) * c_;
            for (std::size_t q = 0; q < t.w.size(); ++q) {
                const unsigned char* src = in + (i * w_ + t.first + q) * c_;
                for (std::size_t k = 0; k < c_; ++k) dst[k] += t.w[q] * static_cast<float>(src[k]);
            }
        }
    for (std::size_t o = 0; o < oh_; ++o) {
        const tap& t = rows_[o];
        for (std::size_t j = 0; j < ow_ * c_; ++j) {
            float v = 0;
            for (std::size_t q = 0; q < t.w.size(); ++q) v += t.w[q] * work[(t.first + q) * ow_ * c_ + j];
            out[o * ow_ * c_ + j] = static_cast<unsigned char>(std::min(255.0f, std::max(0.0f, v)) + 0.5f);
        }
    }
}

}  // namespace recalign::synth

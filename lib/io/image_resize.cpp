// transform_image: torchvision's Resize(S) on a PIL image (Pillow 9.4's antialiased bilinear
// resample, libImaging/Resample.c), then CenterCrop((h, w)), then the layout. The resample
// is Pillow's arithmetic step by step — double-precision coefficients per output pixel with
// the support widened by the downscale factor, normalised, rounded to 22-bit fixed point;
// a horizontal pass then a vertical pass, each rounding to u8 — so the pixels are Pillow's
// bit for bit. Only the pixels the crop keeps are computed (each output pixel depends on its
// own coefficients only, so this changes no value).
#include <algorithm>
#include <cmath>
#include <cstring>
#include <stdexcept>
#include <string>

#include "recalign/core/checked.hpp"
#include "recalign/io/image.hpp"

namespace recalign::io {

namespace {

constexpr int precision_bits = 32 - 8 - 2;  // Resample.c's PRECISION_BITS
constexpr std::int32_t half = 1 << (precision_bits - 1);  // its rounding term

double bilinear(double x) {
    if (x < 0.0) x = -x;
    return x < 1.0 ? 1.0 - x : 0.0;
}

// Resample.c's precompute_coeffs + normalize_coeffs_8bpc for box (0, in), filter support 1,
// for the outputs [lo, hi) only (each output's coefficients depend on its index alone), so
// the tables are bounded by what the crop keeps.
void build_axis(resize_axis& a, std::size_t in, std::size_t out, std::size_t lo, std::size_t hi) {
    if (a.in == in && a.out == out && a.lo == lo && a.hi == hi && !a.first.empty()) return;
    const double scale = static_cast<double>(in) / static_cast<double>(out);
    const double filterscale = scale < 1.0 ? 1.0 : scale;
    const double support = 1.0 * filterscale;
    const auto taps = static_cast<std::size_t>(std::ceil(support)) * 2 + 1;
    a.first.assign(hi - lo, 0);
    a.count.assign(hi - lo, 0);
    a.weights.assign(checked_mul(hi - lo, taps, "resize coefficients"), 0);
    std::vector<double> k(taps);
    const double ss = 1.0 / filterscale;
    for (std::size_t xx = lo; xx < hi; ++xx) {
        const std::size_t i = xx - lo;
        const double center = 0.0 + (static_cast<double>(xx) + 0.5) * scale;
        int xmin = static_cast<int>(center - support + 0.5);
        if (xmin < 0) xmin = 0;
        int xmax = static_cast<int>(center + support + 0.5);
        if (xmax > static_cast<int>(in)) xmax = static_cast<int>(in);
        xmax -= xmin;
        double ww = 0.0;
        for (int x = 0; x < xmax; ++x) {
            const double w = bilinear((x + xmin - center + 0.5) * ss);
            k[static_cast<std::size_t>(x)] = w;
            ww += w;
        }
        for (int x = 0; x < xmax; ++x) {
            if (ww != 0.0) k[static_cast<std::size_t>(x)] /= ww;
            a.weights[i * taps + static_cast<std::size_t>(x)] =
                static_cast<std::int32_t>(0.5 + k[static_cast<std::size_t>(x)] * (1 << precision_bits));  // weights >= 0
        }
        a.first[i] = xmin;
        a.count[i] = xmax;
    }
    a.in = in;
    a.out = out;
    a.taps = taps;
    a.lo = lo;
    a.hi = hi;
}

inline std::uint8_t clip8(std::int32_t v) {
    v >>= precision_bits;
    return static_cast<std::uint8_t>(v < 0 ? 0 : v > 255 ? 255 : v);
}

// CenterCrop's offset of the kept window in a side of `size`: int(round((size - crop) / 2.0))
// (Python rounds halves to even); a crop larger than the side pads (crop - size) // 2 before.
std::ptrdiff_t crop_offset(std::size_t size, std::size_t crop) {
    if (crop > size) return -static_cast<std::ptrdiff_t>((crop - size) / 2);
    const std::size_t d = size - crop, half = d / 2;
    return static_cast<std::ptrdiff_t>(d % 2 == 1 && half % 2 == 1 ? half + 1 : half);
}

}  // namespace

void transform_image(const image& in, const image_geometry& g, image& scratch, std::uint8_t* out,
                     std::size_t out_size) {
    g.validate();
    const std::size_t c = in.channels;
    if (c != static_cast<std::size_t>(g.channels))
        throw std::invalid_argument("transform_image: the image has " + std::to_string(c) + " channels, the geometry " +
                                    std::to_string(g.channels));
    if (in.pixels.size() != checked_product({in.height, in.width, c}, "image") || in.height == 0 || in.width == 0)
        throw std::invalid_argument("transform_image: the image's pixels do not match its " + std::to_string(in.height) +
                                    "x" + std::to_string(in.width) + "x" + std::to_string(c) + " shape");
    image_geometry no_crop = g;
    no_crop.crop_h = no_crop.crop_w = 0;
    const auto [rh, rw] = output_size(in.height, in.width, no_crop);  // after resize, before crop
    const auto [oh, ow] = output_size(in.height, in.width, g);
    if (out_size != checked_product({oh, ow, c}, "image output"))
        throw std::invalid_argument("transform_image: output holds " + std::to_string(out_size) + " bytes, the image needs " +
                                    std::to_string(oh) + "x" + std::to_string(ow) + "x" + std::to_string(c));

    // Output pixel (r, x) is resized pixel (r + top, x + left); outside the resized image it is 0.
    const std::ptrdiff_t top = crop_offset(rh, oh), left = crop_offset(rw, ow);
    const auto clamp_range = [](std::ptrdiff_t offset, std::size_t n, std::size_t size, std::size_t& lo, std::size_t& hi) {
        lo = static_cast<std::size_t>(std::max<std::ptrdiff_t>(0, -offset));
        hi = static_cast<std::size_t>(std::min<std::ptrdiff_t>(static_cast<std::ptrdiff_t>(n),
                                                               static_cast<std::ptrdiff_t>(size) - offset));
    };
    std::size_t r0, r1, x0, x1;  // kept output rows [r0, r1), columns [x0, x1)
    clamp_range(top, oh, rh, r0, r1);
    clamp_range(left, ow, rw, x0, x1);
    if (r0 > 0 || r1 < oh || x0 > 0 || x1 < ow) std::memset(out, 0, out_size);
    const std::size_t y_first = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(r0) + top);  // resized rows
    const std::size_t y_last = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(r1) + top);
    const std::size_t col_first = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(x0) + left);
    const std::size_t kept_w = x1 - x0;

    const bool need_h = rw != in.width, need_v = rh != in.height;
    if (need_h) build_axis(scratch.cols, in.width, rw, col_first, col_first + kept_w);
    if (need_v) build_axis(scratch.rows, in.height, rh, y_first, y_last);
    // Input rows the kept output rows read (the tables are indexed from y_first, col_first).
    const std::size_t n_rows = y_last - y_first;
    const std::size_t in_first = need_v ? static_cast<std::size_t>(scratch.rows.first[0]) : y_first;
    const std::size_t in_last = need_v ? static_cast<std::size_t>(scratch.rows.first[n_rows - 1] + scratch.rows.count[n_rows - 1])
                                       : y_last;

    // Horizontal pass into scratch (rows in_first..in_last, kept columns only), or the input itself.
    const std::uint8_t* mid = in.pixels.data() + (in_first * in.width + col_first) * c;
    std::size_t mid_stride = in.width * c;
    if (need_h && kept_w > 0) {
        mid_stride = kept_w * c;
        scratch.pixels.resize((in_last - in_first) * mid_stride);
        const resize_axis& a = scratch.cols;
        for (std::size_t y = in_first; y < in_last; ++y) {
            const std::uint8_t* src = in.pixels.data() + y * in.width * c;
            std::uint8_t* dst = scratch.pixels.data() + (y - in_first) * mid_stride;
            for (std::size_t xo = 0; xo < kept_w; ++xo) {
                const std::int32_t* k = a.weights.data() + xo * a.taps;
                const std::uint8_t* s = src + static_cast<std::size_t>(a.first[xo]) * c;
                const int n = a.count[xo];
                if (c == 3) {  // Pillow's 3-band loop: one accumulator per channel
                    std::int32_t r = half, g = half, b = half;
                    for (int t = 0; t < n; ++t, s += 3) {
                        r += s[0] * k[t];
                        g += s[1] * k[t];
                        b += s[2] * k[t];
                    }
                    dst[3 * xo] = clip8(r);
                    dst[3 * xo + 1] = clip8(g);
                    dst[3 * xo + 2] = clip8(b);
                } else {
                    std::int32_t v = half;
                    for (int t = 0; t < n; ++t) v += s[t] * k[t];
                    dst[xo] = clip8(v);
                }
            }
        }
        mid = scratch.pixels.data();
    }

    // Vertical pass (or a copy) into the output, in its layout. The taps run outermost so
    // that the sums over a row vectorise; integer sums do not depend on their order.
    thread_local std::vector<std::int32_t> sums;  // one output row's accumulators
    thread_local std::vector<std::uint8_t> row;   // one output row, HWC
    const std::size_t row_values = kept_w * c;
    sums.resize(row_values);
    row.resize(row_values);
    for (std::size_t r = r0; r < r1; ++r) {
        const std::size_t y = static_cast<std::size_t>(static_cast<std::ptrdiff_t>(r) + top);
        const std::uint8_t* line;
        if (need_v) {
            const resize_axis& a = scratch.rows;
            const std::size_t i = y - y_first;
            const std::int32_t* k = a.weights.data() + i * a.taps;
            const std::uint8_t* src = mid + (static_cast<std::size_t>(a.first[i]) - in_first) * mid_stride;
            const int n = a.count[i];
            std::int32_t* acc = sums.data();
            std::fill(acc, acc + row_values, half);
            for (int t = 0; t < n; ++t) {
                const std::uint8_t* s = src + static_cast<std::size_t>(t) * mid_stride;
                const std::int32_t w = k[t];
                for (std::size_t j = 0; j < row_values; ++j) acc[j] += s[j] * w;
            }
            for (std::size_t j = 0; j < row_values; ++j) row[j] = clip8(acc[j]);
            line = row.data();
        } else {
            line = mid + (y - in_first) * mid_stride;
        }
        if (g.layout == image_layout::hwc) {
            std::memcpy(out + (r * ow + x0) * c, line, kept_w * c);
        } else {
            for (std::size_t ch = 0; ch < c; ++ch) {
                std::uint8_t* plane = out + (ch * oh + r) * ow + x0;
                for (std::size_t x = 0; x < kept_w; ++x) plane[x] = line[x * c + ch];
            }
        }
    }
}

}  // namespace recalign::io

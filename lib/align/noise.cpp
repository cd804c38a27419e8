#include "recalign/align/noise.hpp"

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <limits>
#include <cstdlib>
#include <numeric>
#include <sstream>
#include <stdexcept>
#include <string>

#include "recalign/core/blas.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign {

const char* noise_family_name(noise_family f) {
    switch (f) {
        case noise_family::gaussian: return "gaussian";
        case noise_family::dropout: return "dropout";
        case noise_family::mask: return "mask";
    }
    return "unknown";
}

const char* mask_scheme_name(mask_scheme s) { return s == mask_scheme::fixed_count ? "fixed" : "bernoulli"; }

// --- the spec parser ---------------------------------------------------------------------

namespace {

[[noreturn]] void bad_spec(const std::string& text, const std::string& what) {
    throw std::invalid_argument("noise spec '" + text + "': " + what);
}

double parse_double(const std::string& text, const std::string& key, const std::string& v) {
    if (v.empty()) bad_spec(text, "empty value for '" + key + "'");
    char* end = nullptr;
    errno = 0;
    const double d = std::strtod(v.c_str(), &end);
    // ERANGE also flags a result that underflowed to a subnormal: that value is exact enough
    // and to_string prints it (e.g. "5e-324"), so only an underflow to zero is refused here;
    // overflow is the non-finite case (fuzzing found "sigma=0x1p-1074": accepted, but its
    // canonical text "sigma=5e-324" was refused; tests/fuzz/corpus/noise_spec/regression).
    if (end != v.c_str() + v.size() || (errno == ERANGE && d == 0.0) || !std::isfinite(d))
        bad_spec(text, "'" + key + "=" + v + "' is not a finite number");
    return d;
}

std::uint64_t parse_uint(const std::string& text, const std::string& key, const std::string& v) {
    if (v.empty() || v.find_first_not_of("0123456789") != std::string::npos)
        bad_spec(text, "'" + key + "=" + v + "' is not a non-negative integer");
    errno = 0;
    const unsigned long long u = std::strtoull(v.c_str(), nullptr, 10);
    if (errno == ERANGE) bad_spec(text, "'" + key + "=" + v + "' is too large");
    return u;
}

// "AxB" or "AxBxC" (or a single "A" when `single_ok`: a square patch).
std::vector<std::size_t> parse_dims(const std::string& text, const std::string& key, const std::string& v,
                                    std::size_t min_parts, std::size_t max_parts) {
    const std::string form = max_parts == 2 ? std::string("PHxPW (e.g. 2x2)") : std::string("HxW or HxWxC (e.g. 28x28x1)");
    std::vector<std::size_t> out;
    std::size_t start = 0;
    while (true) {
        const std::size_t x = v.find('x', start);
        const std::string part = v.substr(start, x == std::string::npos ? std::string::npos : x - start);
        if (part.empty() || part.find_first_not_of("0123456789") != std::string::npos || part.size() > 9)
            bad_spec(text, "'" + key + "=" + v + "' is not of the form " + form);
        out.push_back(static_cast<std::size_t>(std::stoul(part)));
        if (x == std::string::npos) break;
        start = x + 1;
    }
    if (out.size() < min_parts || out.size() > max_parts)
        // "shape=28,28,1" reaches here as "shape=28": commas separate the spec's keys.
        bad_spec(text, "'" + key + "=" + v + "' has " + std::to_string(out.size()) + (out.size() == 1 ? " part" : " parts") +
                           ": write it " + form + ", its extents joined by 'x' (commas separate the spec's keys)");
    for (std::size_t d : out)
        if (d == 0) bad_spec(text, "'" + key + "=" + v + "' has a zero extent");
    return out;
}

// Shortest decimal that reads back as the same double (0.1 prints as 0.1, not
// 0.10000000000000001), so specs in reports and JSON look as the user wrote them.
std::string format_double(double v) {
    for (int precision = 1; precision <= 17; ++precision) {
        std::ostringstream os;
        os.precision(precision);
        os << v;
        if (std::strtod(os.str().c_str(), nullptr) == v) return os.str();
    }
    std::ostringstream os;
    os.precision(17);
    os << v;
    return os.str();
}

}  // namespace

noise_spec parse_noise_spec(const std::string& text) {
    const std::size_t colon = text.find(':');
    const std::string family = text.substr(0, colon);
    noise_spec s;
    if (family == "gaussian") s.family = noise_family::gaussian;
    else if (family == "dropout") s.family = noise_family::dropout;
    else if (family == "mask") s.family = noise_family::mask;
    else bad_spec(text, "unknown noise family '" + family + "' (expected gaussian, dropout or mask)");
    bool have_sigma = false, have_ratio = false, have_patch = false;
    if (colon != std::string::npos) {
        const std::string rest = text.substr(colon + 1);
        std::size_t start = 0;
        std::vector<std::string> seen;
        while (start <= rest.size()) {
            const std::size_t comma = rest.find(',', start);
            const std::string item = rest.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
            start = comma == std::string::npos ? rest.size() + 1 : comma + 1;
            const std::size_t eq = item.find('=');
            if (item.empty() || eq == std::string::npos || eq == 0)
                bad_spec(text, "'" + item + "' is not of the form key=value");
            const std::string key = item.substr(0, eq), value = item.substr(eq + 1);
            if (std::find(seen.begin(), seen.end(), key) != seen.end()) bad_spec(text, "key '" + key + "' given twice");
            seen.push_back(key);
            const bool mask_key = key == "patch" || key == "scheme" || key == "shape" || key == "layout";
            if ((key == "sigma" && s.family != noise_family::gaussian) ||
                (key == "ratio" && s.family == noise_family::gaussian) || (mask_key && s.family != noise_family::mask))
                bad_spec(text, "key '" + key + "' does not apply to " + family + " noise");
            if (key == "sigma") {
                s.sigma = parse_double(text, key, value);
                have_sigma = true;
            } else if (key == "ratio") {
                s.ratio = parse_double(text, key, value);
                have_ratio = true;
            } else if (key == "patch") {
                const auto d = parse_dims(text, key, value, 1, 2);
                s.patch_h = d[0];
                s.patch_w = d.size() > 1 ? d[1] : d[0];
                have_patch = true;
            } else if (key == "scheme") {
                if (value == "bernoulli") s.scheme = mask_scheme::bernoulli;
                else if (value == "fixed" || value == "fixed_count") s.scheme = mask_scheme::fixed_count;
                else bad_spec(text, "'scheme=" + value + "' (expected bernoulli or fixed)");
            } else if (key == "shape") {
                const auto d = parse_dims(text, key, value, 2, 3);
                s.shape.height = d[0];
                s.shape.width = d[1];
                s.shape.channels = d.size() > 2 ? d[2] : 1;
            } else if (key == "layout") {
                if (value == "hwc") s.shape.layout = image_layout::hwc;
                else if (value == "chw") s.shape.layout = image_layout::chw;
                else bad_spec(text, "'layout=" + value + "' (expected hwc or chw)");
            } else if (key == "draws") {
                s.draws = static_cast<std::size_t>(parse_uint(text, key, value));
            } else if (key == "seed") {
                s.seed = parse_uint(text, key, value);
            } else {
                bad_spec(text, "unknown key '" + key + "'");
            }
        }
    }
    if (s.family == noise_family::gaussian && !have_sigma) bad_spec(text, "gaussian noise needs sigma=...");
    if (s.family != noise_family::gaussian && !have_ratio) bad_spec(text, family + " noise needs ratio=...");
    if (s.family == noise_family::mask && !have_patch) bad_spec(text, "mask noise needs patch=PHxPW");
    if (s.shape.empty() && text.find("layout=") != std::string::npos)
        bad_spec(text, "layout=... needs shape=HxWxC (otherwise the data's own shape and layout are used)");
    try {
        validate(s);
    } catch (const std::invalid_argument& e) {
        bad_spec(text, e.what());
    }
    return s;
}

std::string to_string(const noise_spec& s) {
    std::string out = noise_family_name(s.family);
    if (s.family == noise_family::gaussian) {
        out += ":sigma=" + format_double(s.sigma);
    } else {
        out += ":ratio=" + format_double(s.ratio);
    }
    if (s.family == noise_family::mask) {
        out += ",patch=" + std::to_string(s.patch_h) + "x" + std::to_string(s.patch_w);
        out += std::string(",scheme=") + mask_scheme_name(s.scheme);
        if (!s.shape.empty()) {
            out += ",shape=" + std::to_string(s.shape.height) + "x" + std::to_string(s.shape.width) + "x" +
                   std::to_string(s.shape.channels);
            out += std::string(",layout=") + image_layout_name(s.shape.layout);
        }
    }
    if (s.draws > 0) out += ",draws=" + std::to_string(s.draws) + ",seed=" + std::to_string(s.seed);
    return out;
}

void validate(const noise_spec& s) {
    switch (s.family) {
        case noise_family::gaussian:
            if (!(s.sigma >= 0.0) || !std::isfinite(s.sigma))
                throw std::invalid_argument("sigma = " + format_double(s.sigma) + " must be finite and >= 0");
            break;
        case noise_family::dropout:
        case noise_family::mask:
            if (!(s.ratio >= 0.0 && s.ratio < 1.0))
                throw std::invalid_argument("ratio = " + format_double(s.ratio) + " must be in [0, 1)");
            if (s.patch_h == 0 || s.patch_w == 0) throw std::invalid_argument("patch extents must be >= 1");
            break;
        default: throw std::invalid_argument("unknown noise family");
    }
    if (s.family == noise_family::mask && !s.shape.empty() &&
        (s.patch_h > s.shape.height || s.patch_w > s.shape.width))
        throw std::invalid_argument("patch " + std::to_string(s.patch_h) + "x" + std::to_string(s.patch_w) +
                                    " is larger than the image " + std::to_string(s.shape.height) + "x" +
                                    std::to_string(s.shape.width));
}

// --- closed forms --------------------------------------------------------------------------

patch_map make_patch_map(const image_shape& shape, std::size_t ph, std::size_t pw) {
    if (shape.empty()) throw std::invalid_argument("patch masking needs the image shape (H, W, C)");
    if (ph == 0 || pw == 0 || ph > shape.height || pw > shape.width)
        throw std::invalid_argument("patch " + std::to_string(ph) + "x" + std::to_string(pw) +
                                    " does not fit an image of " + std::to_string(shape.height) + "x" +
                                    std::to_string(shape.width));
    const std::size_t h = shape.height, w = shape.width, c = shape.channels;
    const std::size_t across = (w + pw - 1) / pw, down = (h + ph - 1) / ph;
    patch_map m;
    const std::size_t values = checked_elements<std::uint32_t>({h, w, c}, "patch map H x W x C");
    m.patches = across * down;  // <= H·W, bounded just above
    if (m.patches > std::numeric_limits<std::uint32_t>::max())
        throw std::invalid_argument("patch masking: " + std::to_string(m.patches) + " patches do not fit a 32-bit patch id");
    m.patch_of.resize(values);
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x) {
            const auto id = static_cast<std::uint32_t>((y / ph) * across + x / pw);
            for (std::size_t ch = 0; ch < c; ++ch) {
                const std::size_t flat = shape.layout == image_layout::hwc ? (y * w + x) * c + ch : (ch * h + y) * w + x;
                m.patch_of[flat] = id;
            }
        }
    return m;
}

keep_probabilities mask_keep_probabilities(const noise_spec& s, std::size_t patches) {
    keep_probabilities k;
    const double p = s.ratio;
    if (s.family == noise_family::dropout || s.scheme == mask_scheme::bernoulli) {
        k.q = k.k_same = 1.0 - p;
        k.k_diff = (1.0 - p) * (1.0 - p);
        return k;
    }
    // MAE's rule: len_keep = int(L * (1 - mask_ratio)), the same double arithmetic.
    const double keep = std::floor(static_cast<double>(patches) * (1.0 - p));
    const std::size_t m = static_cast<std::size_t>(keep);
    if (m == 0)
        throw std::invalid_argument("fixed-count masking keeps floor(" + std::to_string(patches) + " x (1 - " +
                                    format_double(p) + ")) = 0 patches");
    const double pp = static_cast<double>(patches), mm = static_cast<double>(m);
    k.kept_patches = m;
    k.q = k.k_same = mm / pp;
    k.k_diff = patches > 1 ? mm * (mm - 1.0) / (pp * (pp - 1.0)) : 0.0;
    return k;
}

namespace {
image_shape shape_for(const noise_spec& s, const image_shape& context) {
    if (!s.shape.empty()) {
        if (!context.empty() && (context.dim() != s.shape.dim()))
            throw std::invalid_argument("the noise spec's image shape (" + std::to_string(s.shape.dim()) +
                                        " values) disagrees with the data's (" + std::to_string(context.dim()) + ")");
        return s.shape;
    }
    return context;
}
}  // namespace

noise_moments closed_form_noise(const noise_spec& s, const matrix_t& sxx, std::uint64_t n, const image_shape& shape) {
    validate(s);
    const std::size_t d = sxx.shape(0);
    if (sxx.shape(1) != d) throw std::invalid_argument("closed_form_noise: Sxx is not square");
    noise_moments out;
    out.n = n;
    if (s.family == noise_family::gaussian) {
        out.bs = sxx;
        out.g = sxx;
        const double add = static_cast<double>(n) * s.sigma * s.sigma;
        for (std::size_t i = 0; i < d; ++i) out.g(i, i) += add;
        return out;
    }
    // x' = m ⊙ x with a data-independent mask: Bs = diag(q) Sxx, G = K ⊙ Sxx (MATH.md §4),
    // K applied through the patch id of each index: two constants, never a D x D matrix.
    const mask_kernel mk = masking_kernel(s, d, shape);
    const keep_probabilities& k = mk.keep;
    out.bs = sxx * k.q;
    out.g = matrix_t::from_shape({d, d});
    for (std::size_t i = 0; i < d; ++i) {
        const std::uint32_t pi = mk.map.patch_of[i];
        const double* srow = sxx.data() + i * d;
        double* grow = out.g.data() + i * d;
        for (std::size_t j = 0; j < d; ++j) grow[j] = srow[j] * (mk.map.patch_of[j] == pi ? k.k_same : k.k_diff);
    }
    return out;
}

mask_kernel masking_kernel(const noise_spec& s, std::size_t d, const image_shape& shape) {
    validate(s);
    if (s.family == noise_family::gaussian) throw std::invalid_argument("masking_kernel: Gaussian noise is no mask");
    mask_kernel mk;
    patch_map& pm = mk.map;
    if (s.family == noise_family::dropout) {
        pm.patches = d;
        pm.patch_of.resize(d);
        for (std::size_t i = 0; i < d; ++i) pm.patch_of[i] = static_cast<std::uint32_t>(i);
    } else {
        const image_shape sh = shape_for(s, shape);
        if (sh.empty()) throw std::invalid_argument("mask noise needs the image shape (H, W, C)");
        if (sh.dim() != d)
            throw std::invalid_argument("image shape " + std::to_string(sh.height) + "x" + std::to_string(sh.width) + "x" +
                                        std::to_string(sh.channels) + " has " + std::to_string(sh.dim()) +
                                        " values but Sxx is " + std::to_string(d) + " x " + std::to_string(d));
        pm = make_patch_map(sh, s.patch_h, s.patch_w);
    }
    mk.keep = mask_keep_probabilities(s, pm.patches);
    return mk;
}

// --- built-in corruptions for Monte Carlo --------------------------------------------------

corrupt_fn make_corrupter(const noise_spec& spec, const image_shape& context) {
    validate(spec);
    if (spec.family == noise_family::gaussian) {
        const double sigma = spec.sigma;
        return [sigma](const matrix_t& clean, matrix_t& out, const noise_key& key) {
            const std::size_t rows = clean.shape(0), d = clean.shape(1);
            for (std::size_t r = 0; r < rows; ++r) {
                const rng::stream st = key.row_stream(r);
                for (std::size_t c = 0; c < d; ++c) out(r, c) = clean(r, c) + sigma * st.normal(c);
            }
        };
    }
    if (spec.family == noise_family::dropout) {
        const double p = spec.ratio;
        return [p](const matrix_t& clean, matrix_t& out, const noise_key& key) {
            const std::size_t rows = clean.shape(0), d = clean.shape(1);
            for (std::size_t r = 0; r < rows; ++r) {
                const rng::stream st = key.row_stream(r);
                for (std::size_t c = 0; c < d; ++c) out(r, c) = st.uniform(c) < p ? 0.0 : clean(r, c);
            }
        };
    }
    const image_shape sh = shape_for(spec, context);
    const patch_map pm = make_patch_map(sh, spec.patch_h, spec.patch_w);
    const keep_probabilities k = mask_keep_probabilities(spec, pm.patches);
    const noise_spec s = spec;
    const std::size_t dim = sh.dim();
    return [s, pm, k, dim](const matrix_t& clean, matrix_t& out, const noise_key& key) {
        const std::size_t rows = clean.shape(0), d = clean.shape(1), P = pm.patches;
        if (d != dim)
            throw std::invalid_argument("mask corruption: rows have " + std::to_string(d) + " values, the image " +
                                        std::to_string(dim));
        std::vector<std::uint32_t> perm(P);
        std::vector<unsigned char> kept(P);
        for (std::size_t r = 0; r < rows; ++r) {
            const rng::stream st = key.row_stream(r);
            if (s.scheme == mask_scheme::bernoulli) {
                for (std::size_t p = 0; p < P; ++p) kept[p] = st.uniform(p) >= s.ratio;
            } else {
                // Uniform m-subset: the first m entries of a partial Fisher-Yates shuffle.
                std::iota(perm.begin(), perm.end(), 0u);
                std::fill(kept.begin(), kept.end(), 0);
                for (std::size_t i = 0; i < k.kept_patches; ++i) {
                    const std::size_t j = i + static_cast<std::size_t>(st.uniform(i) * static_cast<double>(P - i));
                    std::swap(perm[i], perm[std::min(j, P - 1)]);
                    kept[perm[i]] = 1;
                }
            }
            for (std::size_t c = 0; c < d; ++c) out(r, c) = kept[pm.patch_of[c]] ? clean(r, c) : 0.0;
        }
    };
}

}  // namespace recalign

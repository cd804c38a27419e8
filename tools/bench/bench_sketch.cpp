// Benchmark of the streaming sketches (Frequent Directions, Nyström) against scikit-learn's
// IncrementalPCA and randomized_svd (tools/bench/bench_sketch_peers.py), on one synthetic
// power-law stream shared through a raw float32 file, so every method reads the same bytes.
//
//   bench_sketch generate --dim D --rows N [--seed S] [--alpha A] --out FILE
//       Writes N x D float32 rows, generated deterministically chunk by chunk (never N x D in
//       memory): x = Householder⁴ · (√λ_j z_j)_j + offset, λ_j = j^-alpha, z standard normal
//       from the counter-based Philox generator keyed by (seed, row).
//   bench_sketch run --data FILE --dim D --rows N --method fd|nystrom|exact [--batch B]
//                    [--rank K] [--ell L] [--oversampling P] [--passes Q] [--blocks B] [--probes T]
//                    [--seed S] [--float32 0|1] [--robust 0|1] [--test auto|signs|sparse|gaussian]
//                    [--basis-out FILE]
//       Streams the file (Q reads for Nyström), prints one JSON line: wall seconds, peak RSS,
//       checkpoint bytes, top eigenvalues' sum, error information; writes the D x K basis
//       (float64, row-major) for `eval`.
//   bench_sketch eval --data FILE --dim D --rows N --rank K BASIS...
//       Captured variance tr(V_Kᵀ M V_K) of each basis on the centered data (two reads).
//   bench_sketch ceiling --dim D --batch B [--batches NB] [--reps R] [--rank K] [--oversampling P]
//                        [--probes T] [--input u8|f32] [--test auto|signs|sparse|gaussian]
//       Nyström's update against its ceiling, side by side in one process: the bare GEMMs on
//       the same shapes (Z = X T, Y += Xᵀ Z on a batch already converted, centered and with T
//       stored), in float64 and float32, against nystrom_sketch::update on the raw batch (u8 or
//       f32), float64 and --precision f32-kernels (the latter also with its second thread for
//       the work between the GEMMs disallowed); then the finalisation (nystrom_spectrum).
//       With --test sparse the updates use the sparse sign Ω (X Ω without a GEMM) and the
//       ceiling stays the dense test matrix's two GEMMs: the ratios then say how far past them.
//       The sides alternate batch by batch over R x NB batches (one in-memory batch, reused, so
//       no I/O is timed); prints samples/s (the median batch of each side), their ratios, and
//       the paired ratios (each update batch against the ceiling batch timed beside it: median
//       and quartiles) as JSON.
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <recalign/core/blas.hpp>
#include <recalign/core/rng.hpp>

#include "second_thread.hpp"  // internal (lib/sketch): allow(), for the column without it
#include <recalign/recalign.hpp>

using namespace recalign;
using clock_type = std::chrono::steady_clock;

namespace {

// --test signs|sparse|gaussian|auto: the Nyström test matrix (nystrom_test), refused if unknown.
nystrom_test test_of(const std::string& t) {
    if (t == "auto") return nystrom_test::automatic;
    if (t == "signs") return nystrom_test::signs;
    if (t == "sparse") return nystrom_test::sparse_signs;
    if (t == "gaussian") return nystrom_test::gaussian;
    throw std::invalid_argument("--test must be auto, signs, sparse or gaussian, not '" + t + "'");
}

double cpu_seconds() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           1e-6 * static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec);
}

long peak_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

struct args {
    std::string mode;
    std::map<std::string, std::string> named;
    std::vector<std::string> positional;
    std::string get(const std::string& k, const std::string& def = "") const {
        auto it = named.find(k);
        if (it != named.end()) return it->second;
        if (def.empty()) throw std::invalid_argument("missing --" + k);
        return def;
    }
    std::size_t num(const std::string& k, const std::string& def = "") const { return std::stoull(get(k, def)); }
};

args parse(int argc, char** argv) {
    if (argc < 2) throw std::invalid_argument("usage: bench_sketch generate|run|eval [--options]");
    args a;
    a.mode = argv[1];
    for (int i = 2; i < argc; ++i) {
        std::string s = argv[i];
        if (s.rfind("--", 0) == 0) {
            if (i + 1 >= argc) throw std::invalid_argument("missing value after " + s);
            a.named[s.substr(2)] = argv[++i];
        } else {
            a.positional.push_back(s);
        }
    }
    return a;
}

// --- data ------------------------------------------------------------------------------

// Two standard normals from one Philox block (Box-Muller on two 53-bit uniforms).
void normal_pair(std::uint64_t seed, std::uint64_t row, std::uint32_t pair, double& a, double& b) {
    const rng::block r = rng::philox(seed, pair, static_cast<std::uint32_t>(row), static_cast<std::uint32_t>(row >> 32), 0x5ca1ab1e);
    const double u1 = 1.0 - static_cast<double>(((static_cast<std::uint64_t>(r[0]) << 32) | r[1]) >> 11) * 0x1.0p-53;
    const double u2 = static_cast<double>(((static_cast<std::uint64_t>(r[2]) << 32) | r[3]) >> 11) * 0x1.0p-53;
    const double rad = std::sqrt(-2.0 * std::log(u1)), ang = 6.283185307179586 * u2;
    a = rad * std::cos(ang);
    b = rad * std::sin(ang);
}

int generate(const args& a) {
    const std::size_t d = a.num("dim"), n = a.num("rows");
    const std::uint64_t seed = a.num("seed", "1");
    const double alpha = std::stod(a.get("alpha", "1.0"));
    const std::string out = a.get("out");
    std::vector<double> sd(d), offset(d);
    for (std::size_t j = 0; j < d; ++j) {
        sd[j] = std::pow(static_cast<double>(j + 1), -alpha / 2.0);
        offset[j] = 0.5 + 0.25 * std::sin(static_cast<double>(j));
    }
    // Four Householder reflections: the eigenbasis is not the coordinate basis.
    std::vector<std::vector<double>> house(4, std::vector<double>(d));
    for (std::size_t h = 0; h < 4; ++h) {
        double nv = 0.0;
        for (std::size_t j = 0; j + 1 < d; j += 2) normal_pair(seed ^ 0xabcdefULL, h, static_cast<std::uint32_t>(j / 2), house[h][j], house[h][j + 1]);
        for (double v : house[h]) nv += v * v;
        for (double& v : house[h]) v /= std::sqrt(nv);
    }
    std::FILE* f = std::fopen(out.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot open " + out);
    const std::size_t chunk = 1000;
    std::vector<double> x(chunk * d);
    std::vector<float> xf(chunk * d);
    for (std::size_t r0 = 0; r0 < n; r0 += chunk) {
        const std::size_t rows = std::min(chunk, n - r0);
        for (std::size_t r = 0; r < rows; ++r) {
            double* row = x.data() + r * d;
            for (std::size_t j = 0; j < d; j += 2) {
                double z0, z1;
                normal_pair(seed, r0 + r, static_cast<std::uint32_t>(j / 2), z0, z1);
                row[j] = sd[j] * z0;
                if (j + 1 < d) row[j + 1] = sd[j + 1] * z1;
            }
            for (const auto& v : house) {
                double dot = 0.0;
                for (std::size_t j = 0; j < d; ++j) dot += row[j] * v[j];
                for (std::size_t j = 0; j < d; ++j) row[j] -= 2.0 * dot * v[j];
            }
            for (std::size_t j = 0; j < d; ++j) xf[r * d + j] = static_cast<float>(row[j] + offset[j]);
        }
        if (std::fwrite(xf.data(), sizeof(float), rows * d, f) != rows * d) throw std::runtime_error("write failed");
    }
    if (std::fclose(f) != 0) throw std::runtime_error("close failed");
    std::printf("{\"generated\": \"%s\", \"rows\": %zu, \"dim\": %zu, \"alpha\": %g, \"seed\": %llu}\n", out.c_str(), n, d,
                alpha, static_cast<unsigned long long>(seed));
    return 0;
}

// Reads the float32 file in batches; calls fn(batch_view, first_row).
template <class Fn>
void stream_file(const std::string& path, std::size_t d, std::size_t n, std::size_t batch, Fn fn) {
    std::FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) throw std::runtime_error("cannot open " + path);
    std::vector<float> buf(batch * d);
    for (std::size_t r0 = 0; r0 < n; r0 += batch) {
        const std::size_t rows = std::min(batch, n - r0);
        if (std::fread(buf.data(), sizeof(float), rows * d, f) != rows * d) {
            std::fclose(f);
            throw std::runtime_error(path + ": short read at row " + std::to_string(r0));
        }
        fn(batch_view(buf.data(), rows, d), r0);
    }
    std::fclose(f);
}

// JSON has no NaN: a route without an error bound / estimate prints null.
std::string json_number(double v) {
    if (!std::isfinite(v)) return "null";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.6g", v);
    return buf;
}

template <class T>
std::size_t state_bytes(const T& obj) {
    std::ostringstream os(std::ios::binary);
    obj.save(os);
    return os.str().size();
}

void write_basis(const std::string& path, const matrix_t& basis) {
    if (path.empty()) return;
    std::FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw std::runtime_error("cannot open " + path);
    std::fwrite(basis.data(), sizeof(double), basis.size(), f);
    std::fclose(f);
}

int run(const args& a) {
    const std::string data = a.get("data"), method = a.get("method");
    const std::size_t d = a.num("dim"), n = a.num("rows"), batch = a.num("batch", "1000"), k = a.num("rank", "100");
    const auto t0 = clock_type::now();
    const double cpu0 = cpu_seconds();
    spectrum sp;
    std::size_t bytes = 0;
    std::string extra;
    if (method == "fd") {
        frequent_directions_options o;
        o.dim = d;
        o.ell = a.num("ell", std::to_string(2 * k));
        o.float32_kernels = a.get("float32", "0") == "1";
        frequent_directions fd(o);
        stream_file(data, d, n, batch, [&](const batch_view& b, std::size_t r) { fd.update(b, r); });
        frequent_directions_spectrum_options so;
        so.rank = k;
        so.robust_shift = a.get("robust", "0") == "1";
        sp = frequent_directions_spectrum(fd, so);
        bytes = state_bytes(fd);
        extra = ", \"ell\": " + std::to_string(o.ell) + ", \"shrinks\": " + std::to_string(fd.shrinks());
    } else if (method == "nystrom") {
        nystrom_options o;
        o.dim = d;
        o.rank = k;
        o.oversampling = a.num("oversampling", "20");
        o.probes = a.num("probes", "10");
        o.seed = a.num("seed", "7");
        o.float32_kernels = a.get("float32", "0") == "1";
        o.blocks = a.num("blocks", "1");  // > 1: block Krylov
        o.test = test_of(a.get("test", "auto"));
        const std::size_t passes = a.num("passes", "1");
        nystrom_sketch ny(o);
        for (std::size_t p = 0; p < passes; ++p) {
            if (p > 0) ny.next_pass();
            stream_file(data, d, n, batch, [&](const batch_view& b, std::size_t r) { ny.update(b, r); });
        }
        sp = nystrom_spectrum(ny);
        bytes = state_bytes(ny);
        extra = ", \"oversampling\": " + std::to_string(o.oversampling) + ", \"passes\": " + std::to_string(passes) +
                ", \"blocks\": " + std::to_string(o.blocks) +
                ", \"probes\": " + std::to_string(o.probes) +
                ", \"float32_kernels\": " + (o.float32_kernels ? "true" : "false");
    } else if (method == "exact") {
        moment_options o;
        o.dim = d;
        o.float32_kernels = a.get("float32", "0") == "1";
        moment_accumulator m(o);
        stream_file(data, d, n, batch, [&](const batch_view& b, std::size_t r) { m.update(b, r); });
        sp = exact_spectrum(m, centering::centered);
        bytes = state_bytes(m);
        matrix_t top = xt::zeros<double>({d, k});
        for (std::size_t i = 0; i < d; ++i)
            for (std::size_t j = 0; j < k; ++j) top(i, j) = sp.basis(i, j);
        sp.basis = top;
        vector_t ev = xt::zeros<double>({k});
        for (std::size_t j = 0; j < k; ++j) ev(j) = sp.eigenvalues(j);
        sp.eigenvalues = ev;
    } else {
        throw std::invalid_argument("unknown method " + method);
    }
    const double secs = std::chrono::duration<double>(clock_type::now() - t0).count();
    const double cpu = cpu_seconds() - cpu0;
    double top = 0.0;
    for (std::size_t j = 0; j < std::min(k, sp.rank()); ++j) top += sp.eigenvalues(j);
    write_basis(a.get("basis-out", " ") == " " ? "" : a.get("basis-out"), sp.basis);
    std::printf("{\"method\": \"%s\", \"dim\": %zu, \"rows\": %zu, \"rank\": %zu, \"seconds\": %.3f, \"cpu_seconds\": %.3f, \"peak_rss_mb\": %.1f, "
                "\"state_bytes\": %zu, \"top_eigenvalue_sum\": %.10g, \"total\": %.10g, \"error_bound\": %s, "
                "\"error_estimate\": %s, \"info\": %d%s}\n",
                method.c_str(), d, n, sp.rank(), secs, cpu, static_cast<double>(peak_rss_kb()) / 1024.0, bytes, top, sp.total,
                json_number(sp.error_bound).c_str(), json_number(sp.error_estimate).c_str(), static_cast<int>(sp.status), extra.c_str());
    return 0;
}

int eval(const args& a) {
    const std::string data = a.get("data");
    const std::size_t d = a.num("dim"), n = a.num("rows"), k = a.num("rank", "100");
    std::vector<matrix_t> bases;
    for (const std::string& p : a.positional) {
        matrix_t v = xt::zeros<double>({d, k});
        std::FILE* f = std::fopen(p.c_str(), "rb");
        if (!f) throw std::runtime_error("cannot open " + p);
        const std::size_t got = std::fread(v.data(), sizeof(double), d * k, f);
        std::fclose(f);
        if (got != d * k) throw std::runtime_error(p + ": expected a " + std::to_string(d) + " x " + std::to_string(k) + " float64 basis");
        bases.push_back(std::move(v));
    }
    // Read 1: the mean; read 2: Σ ‖V_kᵀ (x − μ)‖² per basis (MATH.md §5: projections of centered x).
    std::vector<double> mean(d, 0.0);
    stream_file(data, d, n, 1000, [&](const batch_view& b, std::size_t) {
        const float* x = static_cast<const float*>(b.data);
        for (std::size_t r = 0; r < b.rows; ++r)
            for (std::size_t j = 0; j < d; ++j) mean[j] += x[r * d + j];
    });
    for (double& m : mean) m /= static_cast<double>(n);
    std::vector<double> cap(bases.size(), 0.0), total(1, 0.0);
    std::vector<double> xc(1000 * d), p(1000 * k);
    stream_file(data, d, n, 1000, [&](const batch_view& b, std::size_t) {
        const float* x = static_cast<const float*>(b.data);
        for (std::size_t r = 0; r < b.rows; ++r)
            for (std::size_t j = 0; j < d; ++j) {
                xc[r * d + j] = static_cast<double>(x[r * d + j]) - mean[j];
                total[0] += xc[r * d + j] * xc[r * d + j];
            }
        for (std::size_t i = 0; i < bases.size(); ++i) {
            blas::gemm_nn(b.rows, k, d, 1.0, xc.data(), bases[i].data(), 0.0, p.data());
            for (std::size_t t = 0; t < b.rows * k; ++t) cap[i] += p[t] * p[t];
        }
    });
    std::printf("{\"total\": %.12g, \"captured\": {", total[0]);
    for (std::size_t i = 0; i < bases.size(); ++i)
        std::printf("%s\"%s\": %.12g", i ? ", " : "", a.positional[i].c_str(), cap[i]);
    std::printf("}}\n");
    return 0;
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const std::size_t m = v.size() / 2;
    return v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
}

int ceiling(const args& a) {
    const std::size_t d = a.num("dim"), b = a.num("batch", "1000"), nb = a.num("batches", "3"), reps = a.num("reps", "3");
    const std::size_t k = a.num("rank", "100"), p = a.num("oversampling", "10"), t = a.num("probes", "10");
    const std::string input = a.get("input", "u8");
    const nystrom_test test = test_of(a.get("test", "auto"));
    if (reps == 0 || nb == 0) throw std::invalid_argument("ceiling: --reps and --batches must be >= 1");
    const std::size_t w = k + p + t;
    // One batch of pseudo-pixels: smooth rows plus noise (the values do not change the flops).
    std::vector<std::uint8_t> xu(b * d);
    std::vector<float> xf(b * d);
    for (std::size_t r = 0; r < b; ++r) {
        const rng::stream st(11, 0, r);
        for (std::size_t j = 0; j < d; ++j) {
            const double v = 128.0 + 60.0 * std::sin(0.001 * static_cast<double>(j) * static_cast<double>(r % 17 + 1)) +
                             30.0 * (st.uniform(j) - 0.5);
            xu[r * d + j] = static_cast<std::uint8_t>(std::min(255.0, std::max(0.0, v)));
            xf[r * d + j] = static_cast<float>(xu[r * d + j]) / 255.0f;
        }
    }
    const batch_view raw = input == "u8" ? batch_view(xu.data(), b, d) : batch_view(xf.data(), b, d);
    // The ceiling's inputs: converted, centered, T stored (double and float).
    std::vector<double> xd(b * d), td(d * w), zd(b * w), yd(d * w, 0.0);
    std::vector<float> xs(b * d), ts(d * w), zs(b * w), ys(d * w, 0.0f);
    for (std::size_t i = 0; i < b * d; ++i) xs[i] = static_cast<float>(xd[i] = static_cast<double>(xf[i]) - 0.5);
    for (std::size_t i = 0; i < d * w; ++i) ts[i] = static_cast<float>(td[i] = (i * 2654435761u) % 7 < 3 ? 1.0 : -1.0);
    nystrom_options o;
    o.dim = d;
    o.rank = k;
    o.oversampling = p;
    o.probes = t;
    o.test = test;
    nystrom_options o32 = o;
    o32.float32_kernels = true;
    nystrom_sketch s64(o), s32(o32);
    // The float32 update again with its second thread disallowed (the element-wise work between
    // the GEMMs on one thread, as before it had one): what that thread buys, in the same run.
    nystrom_sketch s32one(o32);
    // Seconds of each batch, per side. The sides alternate batch by batch (and which of a pair
    // goes first alternates too), so each update's time has a ceiling's time measured within
    // about a second of it: the ratios are paired, and a VM's drift over seconds to minutes
    // (bare GEMMs ran 25-50 % apart between runs here) falls on both members of a pair.
    std::vector<double> gemm64, gemm32, up64, up32, up32one;
    auto secs = [](auto fn) {
        const auto t0 = clock_type::now();
        fn();
        return std::chrono::duration<double>(clock_type::now() - t0).count();
    };
    auto bare64 = [&] {
        blas::gemm_nn(b, w, d, 1.0, xd.data(), td.data(), 0.0, zd.data());
        blas::gemm_tn(d, w, b, 1.0, xd.data(), zd.data(), 1.0, yd.data());
    };
    auto bare32 = [&] {
        blas::gemm_nn(b, w, d, 1.0f, xs.data(), ts.data(), 0.0f, zs.data());
        blas::gemm_tn(d, w, b, 1.0f, xs.data(), zs.data(), 1.0f, ys.data());
    };
    std::uint64_t row = 0;
    auto timed_pair = [&](auto bare, std::vector<double>& tb, auto update, std::vector<double>& tu, bool bare_first) {
        if (bare_first) tb.push_back(secs(bare));
        tu.push_back(secs(update));
        if (!bare_first) tb.push_back(secs(bare));
    };
    for (std::size_t i = 0; i < reps * nb; ++i) {
        const bool bare_first = i % 2 == 0;
        timed_pair(bare64, gemm64, [&] { s64.update(raw, row); row += b; }, up64, bare_first);
        timed_pair(bare32, gemm32, [&] { s32.update(raw, row); row += b; }, up32, bare_first);
        detail::second_thread::allow(false);
        up32one.push_back(secs([&] { s32one.update(raw, row); row += b; }));
        detail::second_thread::allow(true);
    }
    const auto f0 = clock_type::now();
    const spectrum sp = nystrom_spectrum(s64);
    const double fin = std::chrono::duration<double>(clock_type::now() - f0).count();
    auto rate = [&](const std::vector<double>& t) { return static_cast<double>(b) / median(t); };
    // Update throughput over its ceiling's, batch pair by batch pair: median and quartiles.
    auto paired = [](const std::vector<double>& bare, const std::vector<double>& upd) {
        std::vector<double> r(bare.size());
        for (std::size_t i = 0; i < r.size(); ++i) r[i] = bare[i] / upd[i];
        std::sort(r.begin(), r.end());
        const auto at = [&](double q) { return r[static_cast<std::size_t>(q * static_cast<double>(r.size() - 1) + 0.5)]; };
        char buf[96];
        std::snprintf(buf, sizeof buf, "{\"median\": %.3f, \"q1\": %.3f, \"q3\": %.3f}", median(r), at(0.25), at(0.75));
        return std::string(buf);
    };
    const double g64 = rate(gemm64), g32 = rate(gemm32), u64 = rate(up64), u32 = rate(up32), u32one = rate(up32one);
    std::printf("{\"dim\": %zu, \"batch\": %zu, \"batches\": %zu, \"reps\": %zu, \"width\": %zu, \"input\": \"%s\", "
                "\"samples_per_s\": {\"gemm_f64\": %.1f, \"update_f64\": %.1f, \"gemm_f32\": %.1f, \"update_f32_kernels\": %.1f, "
                "\"update_f32_kernels_one_thread_between_gemms\": %.1f}, "
                "\"ratio_f64\": %.3f, \"ratio_f32\": %.3f, \"ratio_f32_one_thread_between_gemms\": %.3f, "
                "\"paired_ratio_f64\": %s, \"paired_ratio_f32\": %s, "
                "\"finish_seconds\": %.3f, \"rank\": %zu, \"peak_rss_mb\": %.1f, \"test\": \"%s\"}\n",
                d, b, nb, reps, w, input.c_str(), g64, u64, g32, u32, u32one, u64 / g64, u32 / g32, u32one / g32,
                paired(gemm64, up64).c_str(), paired(gemm32, up32).c_str(), fin, sp.rank(),
                static_cast<double>(peak_rss_kb()) / 1024.0, a.get("test", "auto").c_str());
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        const args a = parse(argc, argv);
        if (a.mode == "generate") return generate(a);
        if (a.mode == "run") return run(a);
        if (a.mode == "eval") return eval(a);
        if (a.mode == "ceiling") return ceiling(a);
        throw std::invalid_argument("unknown mode " + a.mode);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "bench_sketch: %s\n", e.what());
        return 1;
    }
}

// Benchmark of the moment accumulator against the hardware ceiling: the bare OpenBLAS
// SYRK over the same batches, measured side by side in one process (medians of several
// alternating runs, so machine noise hits both sides alike), plus float32 paths and the
// peak RSS of streaming the Fashion-MNIST training set from its .gz file.
//
// Usage: bench_moments [repeats]          throughput table (data in memory)
//        bench_moments --stream K         stream the training set K times; print peak RSS
//        bench_moments --ceiling D N B    D-dimensional uint8 rows: bare SYRKs vs the update, rows/s
#include <cblas.h>
#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include <recalign/recalign.hpp>

using namespace recalign;
using clock_type = std::chrono::steady_clock;

namespace {

double seconds_since(clock_type::time_point t0) {
    return std::chrono::duration<double>(clock_type::now() - t0).count();
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
}

double minimum(const std::vector<double>& v) { return *std::min_element(v.begin(), v.end()); }

long peak_rss_kb() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    return u.ru_maxrss;
}

struct data_set {
    std::size_t n = 0, d = 0;
    std::vector<std::uint8_t> u8;
    std::vector<float> f32;
    std::vector<double> f64;
    std::vector<std::int64_t> labels;
};

data_set load_fashion() {
    const auto files = io::fashion_mnist();
    io::idx_reader images(files.train_images), labels(files.train_labels);
    data_set s;
    s.n = images.rows();
    s.d = images.cols();
    io::row_block b;
    std::vector<std::int64_t> y;
    while (images.read(10000, b) > 0) {
        s.u8.insert(s.u8.end(), b.bytes.begin(), b.bytes.end());
        labels.read_labels(b.rows, y);
        s.labels.insert(s.labels.end(), y.begin(), y.end());
    }
    s.f32.resize(s.u8.size());
    s.f64.resize(s.u8.size());
    for (std::size_t i = 0; i < s.u8.size(); ++i) {
        s.f64[i] = s.u8[i] / 255.0;
        s.f32[i] = static_cast<float>(s.f64[i]);
    }
    return s;
}

int stream_mode(int passes) {
    const auto files = io::fashion_mnist();
    moment_accumulator acc({784, target_mode::class_ids, 10});
    io::row_block b;
    std::vector<std::int64_t> y;
    const auto t0 = clock_type::now();
    for (int p = 0; p < passes; ++p) {
        io::idx_reader images(files.train_images), labels(files.train_labels);
        while (images.read(1000, b) > 0) {
            labels.read_labels(b.rows, y);
            acc.update(b.view(), target_view::class_ids(y.data(), y.size()));
        }
    }
    const double t = seconds_since(t0);
    std::printf("streamed %d pass(es): n = %llu samples in %.2f s (%.0f samples/s), peak RSS %.1f MB\n", passes,
                static_cast<unsigned long long>(acc.n()), t, acc.n() / t, peak_rss_kb() / 1024.0);
    return 0;
}

// The ceiling at a high dimension (issue 13's 64x64x3 images: D = 12,288): bare DSYRK and SSYRK
// over `rows` random uint8 rows in batches, against the accumulator's uint8 update (scale 1/255)
// through the double path and through the exact integer SSYRK path, in rows (images) per second.
int ceiling_mode(std::size_t d, std::size_t rows, std::size_t batch) {
    std::vector<std::uint8_t> u8(checked_mul(batch, d, "batch x D"));
    std::uint64_t state = 12345;
    for (auto& v : u8) {
        state = state * 6364136223846793005ULL + 1442695040888963407ULL;
        v = static_cast<std::uint8_t>(state >> 56);
    }
    std::vector<double> xd(u8.size());
    std::vector<float> xf(u8.size());
    for (std::size_t i = 0; i < u8.size(); ++i) xf[i] = static_cast<float>(xd[i] = u8[i] / 255.0);
    const int di = static_cast<int>(d), bi = static_cast<int>(batch);
    auto rate = [&](auto&& one_batch) {
        const auto t0 = clock_type::now();
        for (std::size_t r = 0; r < rows; r += batch) one_batch();
        return static_cast<double>(rows) / seconds_since(t0);
    };
    std::printf("D = %zu, %zu rows in batches of %zu (the same batch repeated), rows/s:\n", d, rows, batch);
    {
        std::vector<double> c(d * d, 0.0);
        std::printf("  bare cblas_dsyrk (float64 rows)          %9.1f\n", rate([&] {
            cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, di, bi, 1.0, xd.data(), di, 1.0, c.data(), di);
        }));
    }
    {
        std::vector<float> c(d * d, 0.0f);
        std::printf("  bare cblas_ssyrk (float32 rows)          %9.1f\n", rate([&] {
            cblas_ssyrk(CblasRowMajor, CblasUpper, CblasTrans, di, bi, 1.0f, xf.data(), di, 1.0f, c.data(), di);
        }));
    }
    batch_view v(u8.data(), batch, d);
    v.scale = 1.0 / 255.0;
    {
        // uint8 rows take the exact integer SSYRK path at any precision (lib/stats/moments_u8.cpp).
        moment_accumulator acc({d});
        const double r = rate([&] { acc.update(v); });
        std::printf("  moment_accumulator, uint8 (exact path)   %9.1f   peak RSS so far %.0f MB\n", r,
                    peak_rss_kb() / 1024.0);
    }
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc > 2 && std::string(argv[1]) == "--stream") return stream_mode(std::atoi(argv[2]));
    if (argc > 4 && std::string(argv[1]) == "--ceiling")
        return ceiling_mode(std::strtoull(argv[2], nullptr, 10), std::strtoull(argv[3], nullptr, 10),
                            std::strtoull(argv[4], nullptr, 10));
    const int repeats = argc > 1 ? std::atoi(argv[1]) : 5;
    const data_set s = load_fashion();
    const std::size_t d = s.d;
    std::printf("Fashion-MNIST training set in memory: n = %zu, D = %zu; %d alternating repeats, medians\n", s.n, d,
                repeats);
    std::printf("%6s  %9s  %9s  %9s  %9s  %9s  %9s  %8s  %8s  %8s  %8s  %8s  %8s  %8s\n", "batch", "dsyrk s", "f64 s",
                "f64+lab s", "f32 s", "f32-kern s", "u8 s", "f64/syrk", "lab/syrk", "u8/syrk", "f32k/syr", "min:f64",
                "min:lab", "min:u8");
    for (std::size_t batch : {64, 256, 1000, 4096}) {
        std::vector<double> t_syrk, t_f64, t_lab, t_f32, t_f32k, t_u8;
        std::vector<double> c(d * d);
        for (int r = 0; r < repeats; ++r) {
            // Ceiling: SYRK alone over the same double batches, accumulating.
            std::fill(c.begin(), c.end(), 0.0);
            auto t0 = clock_type::now();
            for (std::size_t i = 0; i < s.n; i += batch) {
                const std::size_t b = std::min(batch, s.n - i);
                cblas_dsyrk(CblasRowMajor, CblasUpper, CblasTrans, static_cast<int>(d), static_cast<int>(b), 1.0,
                            s.f64.data() + i * d, static_cast<int>(d), 1.0, c.data(), static_cast<int>(d));
            }
            t_syrk.push_back(seconds_since(t0));

            auto run = [&](auto&& make, auto&& feed) {
                auto acc = make();
                const auto t = clock_type::now();
                for (std::size_t i = 0; i < s.n; i += batch) feed(acc, i, std::min(batch, s.n - i));
                return seconds_since(t);
            };
            t_f64.push_back(run([&] { return moment_accumulator({d}); },
                                [&](moment_accumulator& a, std::size_t i, std::size_t b) {
                                    a.update(batch_view(s.f64.data() + i * d, b, d));
                                }));
            t_lab.push_back(run([&] { return moment_accumulator({d, target_mode::class_ids, 10}); },
                                [&](moment_accumulator& a, std::size_t i, std::size_t b) {
                                    a.update(batch_view(s.f64.data() + i * d, b, d),
                                             target_view::class_ids(s.labels.data() + i, b));
                                }));
            t_f32.push_back(run([&] { return moment_accumulator({d}); },
                                [&](moment_accumulator& a, std::size_t i, std::size_t b) {
                                    a.update(batch_view(s.f32.data() + i * d, b, d));
                                }));
            t_f32k.push_back(run([&] {
                                     moment_options o{d};
                                     o.float32_kernels = true;
                                     return moment_accumulator(o);
                                 },
                                 [&](moment_accumulator& a, std::size_t i, std::size_t b) {
                                     a.update(batch_view(s.f32.data() + i * d, b, d));
                                 }));
            // uint8 pixels with scale 1/255 (what the readers hand over): the exact integer SSYRK
            // path, which uint8 input takes at any precision.
            auto u8_batch = [&](std::size_t i, std::size_t b) {
                batch_view v(s.u8.data() + i * d, b, d);
                v.scale = 1.0 / 255.0;
                return v;
            };
            t_u8.push_back(run([&] { return moment_accumulator({d}); },
                               [&](moment_accumulator& a, std::size_t i, std::size_t b) { a.update(u8_batch(i, b)); }));
        }
        const double syrk = median(t_syrk), f64 = median(t_f64), lab = median(t_lab), f32 = median(t_f32),
                     f32k = median(t_f32k), u8 = median(t_u8);
        const double ms = minimum(t_syrk);
        std::printf("%6zu  %9.4f  %9.4f  %9.4f  %9.4f  %9.4f  %9.4f  %8.3f  %8.3f  %8.3f  %8.3f  %8.3f  %8.3f  %8.3f\n",
                    batch, syrk, f64, lab, f32, f32k, u8, syrk / f64, syrk / lab, syrk / u8, syrk / f32k,
                    ms / minimum(t_f64), ms / minimum(t_lab), ms / minimum(t_u8));
    }
    std::printf("(ratios are throughput relative to bare dsyrk, syrk time / our time, from medians and from minima\n"
                " of the repeats; >= 0.9 is the goal. The f64 columns take float64 input, lab adds class ids, f32 takes\n"
                " float32 input through the double path, f32-kern through the opt-in single-precision SYRK; u8 takes the\n"
                " uint8 pixels with scale 1/255, through the exact integer SSYRK at any precision)\n");

    // Accuracy of the float32-kernel path on the real data, against the double path.
    moment_options o{d};
    moment_accumulator exact(o);
    o.float32_kernels = true;
    moment_accumulator fast(o);
    for (std::size_t i = 0; i < s.n; i += 1000) {
        const std::size_t b = std::min<std::size_t>(1000, s.n - i);
        exact.update(batch_view(s.f32.data() + i * d, b, d));
        fast.update(batch_view(s.f32.data() + i * d, b, d));
    }
    const matrix_t a = exact.sxx(centering::centered), f = fast.sxx(centering::centered);
    double num = 0, den = 0, amax = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        num += (a.data()[i] - f.data()[i]) * (a.data()[i] - f.data()[i]);
        den += a.data()[i] * a.data()[i];
        amax = std::max(amax, std::abs(a.data()[i] - f.data()[i]));
    }
    const vector_t ea = exact_spectrum(exact, centering::centered).eigenvalues;
    const vector_t ef = exact_spectrum(fast, centering::centered).eigenvalues;
    std::printf("float32 kernels (batch 1000) vs double: relative Frobenius error of Mxx %.2e, max abs %.2e; "
                "top eigenvalue rel. error %.2e, 100th %.2e\n",
                std::sqrt(num / den), amax, std::abs(ea(0) - ef(0)) / ea(0), std::abs(ea(99) - ef(99)) / ea(99));
    return 0;
}

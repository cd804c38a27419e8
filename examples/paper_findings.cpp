// Reproduces the qualitative findings of "Learning by Reconstruction Produces Uninformative
// Features For Perception" on Fashion-MNIST (a background-free data set), from one streaming
// pass over the images, and writes CSV files:
//
//   figure2_alignment.csv  k, k/D, paper, rank, fit          the Figure 2 curve (Eq. 7)
//   figure7_masking.csv    patch, scheme, ratio, k, clean, denoising, relative_difference
//                          the Figure 7 sweep: patch 1x1, 2x2, 4x4; drop ratio 0.1 .. 0.9;
//                          Bernoulli and fixed-count (MAE) masking; Theorem 3 closed forms
//   noise_impact.csv       noise, k, distance              label-free diagnostic (Σ sin²)
//   gaussian.csv           sigma, max |relative difference|, max impact    Corollary 3.1
//
// Usage: paper_findings [out_dir] [n_images] [side: 28 or 14]
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <vector>

#include <recalign/align/alignment.hpp>
#include <recalign/align/denoising.hpp>
#include <recalign/align/noise.hpp>
#include <recalign/io/datasets.hpp>
#include <recalign/io/idx.hpp>

using namespace recalign;

namespace {
FILE* open_csv(const std::string& dir, const char* name) {
    const std::string path = dir + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    if (!f) throw std::runtime_error("cannot write " + path);
    return f;
}
}  // namespace

int main(int argc, char** argv) try {
    const std::string out = argc > 1 ? argv[1] : ".";
    const std::size_t want = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 60000;
    const std::size_t side = argc > 3 ? std::strtoul(argv[3], nullptr, 10) : 28;
    if (side != 28 && side != 14) throw std::invalid_argument("side must be 28 or 14");
    const std::size_t d = side * side, factor = 28 / side;

    // One pass: the clean moments are all the analyses need (the noise closed forms are
    // functions of them, MATH.md §4).
    const io::fashion_mnist_files files = io::fashion_mnist();
    io::idx_reader images(files.train_images), labels(files.train_labels);
    moment_accumulator acc({d, target_mode::class_ids, 10});
    io::row_block block;
    std::vector<std::int64_t> y;
    std::vector<double> x;
    while (acc.n() < want && images.read(std::min<std::size_t>(1000, want - acc.n()), block) > 0) {
        labels.read_labels(block.rows, y);
        x.assign(block.rows * d, 0.0);
        for (std::size_t r = 0; r < block.rows; ++r)
            for (std::size_t i = 0; i < 28; ++i)
                for (std::size_t j = 0; j < 28; ++j)
                    x[r * d + (i / factor) * side + j / factor] +=
                        block.bytes[r * 784 + i * 28 + j] / (255.0 * factor * factor);
        acc.update(batch_view(x.data(), block.rows, d), target_view::class_ids(y.data(), y.size()));
    }
    const image_shape shape{side, side, 1, image_layout::hwc};
    // One Sxx and one eigendecomposition serve every figure below.
    const statistics clean = finish(acc, centering::uncentered);
    const matrix_t& sxx = *clean.second_moment;
    std::printf("Fashion-MNIST: n = %llu images of %zux%zu (D = %zu), uncentered statistics as in the paper's code\n\n",
                static_cast<unsigned long long>(acc.n()), side, side, d);

    // --- Figure 2 -------------------------------------------------------------------------
    alignment_options ao;
    ao.measure = alignment_measure::paper;
    const alignment_result paper = alignment_curve(clean, ao);
    ao.measure = alignment_measure::rank;
    const alignment_result rank = alignment_curve(clean, ao);
    ao.measure = alignment_measure::fit;
    const alignment_result fit = alignment_curve(clean, ao);
    FILE* f2 = open_csv(out, "figure2_alignment.csv");
    std::fprintf(f2, "k,k_over_d,paper,rank,fit\n");
    for (std::size_t k = 1; k <= paper.max_k; ++k)
        std::fprintf(f2, "%zu,%.6f,%.10g,%.10g,%.10g\n", k, double(k) / d, paper.curve(k - 1), rank.curve(k - 1),
                     fit.curve(k - 1));
    std::fclose(f2);
    std::printf("Figure 2 (Eq. 7): alignment of the top-k principal subspace with the labels\n");
    std::printf("  %6s %6s %10s %10s %10s\n", "k", "k/D", "paper", "rank", "fit");
    for (double frac : {0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0}) {
        const std::size_t k = std::max<std::size_t>(1, static_cast<std::size_t>(std::lround(frac * d)));
        std::printf("  %6zu %6.2f %10.4f %10.4f %10.4f\n", k, frac, paper.curve(k - 1), rank.curve(k - 1),
                    fit.curve(k - 1));
    }
    std::printf("  (%zu directions under the eigenvalue tolerance skipped)\n\n", paper.skipped);

    // --- Figure 7 -------------------------------------------------------------------------
    FILE* f7 = open_csv(out, "figure7_masking.csv");
    FILE* fi = open_csv(out, "noise_impact.csv");
    std::fprintf(f7, "patch,scheme,ratio,k,clean,denoising,relative_difference\n");
    std::fprintf(fi, "noise,k,distance\n");
    const std::vector<std::size_t> report_k = {side == 28 ? std::size_t(10) : std::size_t(5), d / 20, d / 5, d / 2};
    std::printf("Figure 7: relative alignment difference (denoising - clean) / clean, masking closed forms\n");
    std::printf("  %-5s %-9s %5s", "patch", "scheme", "ratio");
    for (std::size_t k : report_k) std::printf("   K=%-5zu", k);
    std::printf("  impact(K=%zu)\n", report_k[1]);
    for (std::size_t patch : {1, 2, 4}) {
        for (mask_scheme scheme : {mask_scheme::bernoulli, mask_scheme::fixed_count}) {
            for (int step = 1; step <= 9; ++step) {
                noise_spec s;
                s.family = noise_family::mask;
                s.patch_h = s.patch_w = patch;
                s.scheme = scheme;
                s.ratio = 0.1 * step;
                const noise_moments nm = closed_form_noise(s, sxx, acc.n(), shape);
                const denoising_result r = denoising_alignment(clean, nm);
                for (std::size_t k = 1; k <= r.max_k; ++k)
                    std::fprintf(f7, "%zux%zu,%s,%.1f,%zu,%.10g,%.10g,%.10g\n", patch, patch, mask_scheme_name(scheme),
                                 s.ratio, k, r.clean_curve(k - 1), r.curve(k - 1), r.relative_difference(k - 1));
                std::printf("  %zux%-3zu %-9s %5.1f", patch, patch, mask_scheme_name(scheme), s.ratio);
                for (std::size_t k : report_k) std::printf("  %+8.4f", k <= r.max_k ? r.relative_difference(k - 1) : NAN);
                if (step == 5 || step == 9) {
                    // The label-free diagnostic, for a few settings (one more decomposition of G).
                    const noise_impact_result imp = noise_impact(clean, nm);
                    for (std::size_t k = 1; k <= imp.max_k; ++k)
                        std::fprintf(fi, "%s,%zu,%.10g\n", to_string(s).c_str(), k, imp.distance(k - 1));
                    std::printf("  %10.4f", imp.distance(report_k[1] - 1));
                }
                std::printf("\n");
                std::fflush(stdout);
            }
        }
    }
    std::fclose(f7);

    // --- Corollary 3.1 ------------------------------------------------------------------
    FILE* fg = open_csv(out, "gaussian.csv");
    std::fprintf(fg, "sigma,max_abs_relative_difference,max_abs_impact\n");
    std::printf("\nCorollary 3.1: additive Gaussian noise never changes the representation\n");
    std::printf("  %8s %26s %22s\n", "sigma", "max_K |relative diff|", "max_K impact (sin^2)");
    for (double sigma : {0.01, 0.1, 0.5, 1.0, 5.0}) {
        noise_spec s;
        s.family = noise_family::gaussian;
        s.sigma = sigma;
        const noise_moments nm = closed_form_noise(s, sxx, acc.n());
        const denoising_result r = denoising_alignment(clean, nm);
        const noise_impact_result imp = noise_impact(clean, nm);
        double rel = 0.0, dist = 0.0;
        for (std::size_t k = 0; k < r.max_k; ++k) rel = std::max(rel, std::abs(r.relative_difference(k)));
        for (std::size_t k = 0; k < imp.max_k; ++k) dist = std::max(dist, std::abs(imp.distance(k)));
        for (std::size_t k = 1; k <= imp.max_k; ++k)
            std::fprintf(fi, "%s,%zu,%.10g\n", to_string(s).c_str(), k, imp.distance(k - 1));
        std::fprintf(fg, "%g,%.6g,%.6g\n", sigma, rel, dist);
        std::printf("  %8g %26.3g %22.3g\n", sigma, rel, dist);
    }
    std::fclose(fg);
    std::fclose(fi);
    std::printf("\nCSV files written to %s\n", out.c_str());
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "paper_findings: %s\n", e.what());
    return 1;
}

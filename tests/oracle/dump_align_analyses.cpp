// Oracle driver for theorem_oracle.py: runs recalign's Theorem 1 trade-off and Theorem 3
// denoising analyses on the first N Fashion-MNIST training images (2x2-averaged to 14x14,
// pixels / 255) streamed in odd-sized batches, and prints the results as JSON.
//
// Usage: dump_align_analyses tradeoff N K lambda...
//        dump_align_analyses denoising N spec...
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <recalign/align/denoising.hpp>
#include <recalign/align/tradeoff.hpp>

#include "../common/fashion.hpp"

using namespace recalign;

namespace {
void print_vector(const char* name, const vector_t& v) {
    std::printf("\"%s\": [", name);
    for (std::size_t i = 0; i < v.size(); ++i) std::printf("%s%.17g", i ? ", " : "", v(i));
    std::printf("]");
}
void print_matrix(const char* name, const matrix_t& m) {
    std::printf("\"%s\": [", name);
    for (std::size_t i = 0; i < m.shape(0); ++i) {
        std::printf("%s[", i ? ", " : "");
        for (std::size_t j = 0; j < m.shape(1); ++j) std::printf("%s%.17g", j ? ", " : "", m(i, j));
        std::printf("]");
    }
    std::printf("]");
}
}  // namespace

int main(int argc, char** argv) try {
    if (argc < 4) {
        std::fprintf(stderr, "usage: dump_align_analyses tradeoff N K lambda... | denoising N spec...\n");
        return 2;
    }
    const std::string mode = argv[1];
    const std::size_t n = std::strtoul(argv[2], nullptr, 10);
    const testing::fashion_subset f = testing::load_fashion(n, true);
    moment_accumulator acc({f.dim, target_mode::class_ids, 10});
    for (std::size_t r0 = 0; r0 < f.n; r0 += 113) {
        const std::size_t b = std::min<std::size_t>(113, f.n - r0);
        acc.update(batch_view(f.row(r0), b, f.dim), target_view::class_ids(f.y.data() + r0, b));
    }
    std::printf("{\"n\": %llu, \"d\": %zu, ", static_cast<unsigned long long>(acc.n()), f.dim);
    if (mode == "tradeoff") {
        tradeoff_options o;
        o.k = std::strtoul(argv[3], nullptr, 10);
        for (int i = 4; i < argc; ++i) o.lambdas.push_back(std::strtod(argv[i], nullptr));
        const tradeoff_result r = tradeoff(finish(acc, centering::uncentered), o);
        std::printf("\"k\": %zu, \"dropped\": %zu, \"points\": [\n", r.k, r.dropped);
        for (std::size_t i = 0; i < r.points.size(); ++i) {
            const tradeoff_point& p = r.points[i];
            std::printf("%s{\"lambda\": %.17g, \"supervised\": %.17g, \"reconstruction\": %.17g, \"loss\": %.17g, ",
                        i ? ",\n" : "", p.lambda, p.supervised_loss, p.reconstruction_loss, p.loss);
            print_matrix("v", p.v);
            std::printf(", ");
            print_matrix("w", p.w);
            std::printf(", ");
            print_matrix("z", p.z);
            std::printf("}");
        }
        std::printf("\n]}\n");
        return 0;
    }
    if (mode != "denoising") throw std::invalid_argument("unknown mode " + mode);
    const image_shape shape{14, 14, 1, image_layout::hwc};
    std::printf("\"results\": [\n");
    const statistics clean = finish(acc, centering::uncentered);
    for (int i = 3; i < argc; ++i) {
        const noise_spec s = parse_noise_spec(argv[i]);
        const noise_moments nm = closed_form_noise(s, *clean.second_moment, clean.n, shape);
        const denoising_result d = denoising_alignment(clean, nm);
        const noise_impact_result imp = noise_impact(clean, nm);
        std::printf("%s{\"spec\": \"%s\", \"max_k\": %zu, \"skipped\": %zu, \"impact_max_k\": %zu, ", i > 3 ? ",\n" : "",
                    argv[i], d.max_k, d.skipped, imp.max_k);
        print_vector("curve", d.curve);
        std::printf(", ");
        print_vector("clean_curve", d.clean_curve);
        std::printf(", ");
        print_vector("eigenvalues", d.subspace.eigenvalues);
        std::printf(", ");
        print_vector("impact", imp.distance);
        std::printf("}");
    }
    std::printf("\n]}\n");
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "dump_align_analyses: %s\n", e.what());
    return 1;
}

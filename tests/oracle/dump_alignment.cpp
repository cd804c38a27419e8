// Oracle driver: streams the first N Fashion-MNIST training images (pixels / 255) through a
// moment accumulator in odd-sized batches and prints, as JSON, every alignment curve the
// library computes (3 measures x 2 centerings) for paper_alignment.py to check against the
// paper's own Section 6.8 procedure.
//
// Usage: dump_alignment N [batch]
#include <cstdio>
#include <cstdlib>
#include <vector>

#include <recalign/recalign.hpp>

int main(int argc, char** argv) {
    using namespace recalign;
    if (argc < 2) {
        std::fprintf(stderr, "usage: dump_alignment N [batch]\n");
        return 2;
    }
    const std::size_t n = std::strtoul(argv[1], nullptr, 10);
    const std::size_t batch = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 97;
    const auto files = io::fashion_mnist();
    io::idx_reader images(files.train_images), labels(files.train_labels);
    const std::size_t d = images.cols();
    moment_accumulator acc({d, target_mode::class_ids, 10});
    io::row_block block;
    std::vector<std::int64_t> y;
    std::vector<double> x;
    while (acc.n() < n && images.read(std::min<std::size_t>(batch, n - acc.n()), block) > 0) {
        labels.read_labels(block.rows, y);
        x.resize(block.rows * d);
        for (std::size_t i = 0; i < x.size(); ++i) x[i] = block.bytes[i] / 255.0;
        acc.update(batch_view(x.data(), block.rows, d), target_view::class_ids(y.data(), y.size()));
    }
    std::printf("{\"n\": %llu, \"d\": %zu, \"curves\": [\n", static_cast<unsigned long long>(acc.n()), d);
    bool first = true;
    for (centering c : {centering::uncentered, centering::centered}) {
        for (alignment_measure m : {alignment_measure::paper, alignment_measure::rank, alignment_measure::fit}) {
            alignment_options o;
            o.measure = m;
            const alignment_result r = alignment_curve(finish(acc, c), o);
            std::printf("%s{\"measure\": \"%s\", \"centering\": \"%s\", \"skipped\": %zu, \"eigenvalues\": [",
                        first ? "" : ",\n", measure_name(m), centering_name(c), r.skipped);
            first = false;
            for (std::size_t i = 0; i < r.eigenvalues.size(); ++i)
                std::printf("%s%.17g", i ? ", " : "", r.eigenvalues(i));
            std::printf("], \"curve\": [");
            for (std::size_t i = 0; i < r.curve.size(); ++i) std::printf("%s%.17g", i ? ", " : "", r.curve(i));
            std::printf("]}");
        }
    }
    std::printf("\n]}\n");
    return 0;
}

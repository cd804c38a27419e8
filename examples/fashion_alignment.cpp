// The main job until the CLI exists: streams the 60,000 Fashion-MNIST training images in
// minibatches into one moment accumulator, then prints the spectrum summary (centered
// covariance) and the paper's alignment curve (uncentered, as in its Section 6.8 code).
//
// Usage: fashion_alignment [batch_size]
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <vector>

#include <recalign/recalign.hpp>

int main(int argc, char** argv) try {
    using namespace recalign;
    const std::size_t batch = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
    const io::fashion_mnist_files files = io::fashion_mnist();
    io::idx_reader images(files.train_images), labels(files.train_labels);
    if (images.rows() != labels.rows()) {
        std::fprintf(stderr, "%s has %llu images but %s has %llu labels\n", files.train_images.c_str(),
                     (unsigned long long)images.rows(), files.train_labels.c_str(), (unsigned long long)labels.rows());
        return 2;
    }
    const std::size_t d = images.cols();
    moment_accumulator acc({d, target_mode::class_ids, 10});
    io::row_block block;
    std::vector<std::int64_t> y;
    std::vector<double> scaled;
    while (images.read(batch, block) > 0) {
        labels.read_labels(block.rows, y);
        // Pixels in [0, 1] as the paper's loaders give them.
        scaled.resize(block.rows * d);
        for (std::size_t i = 0; i < scaled.size(); ++i) scaled[i] = block.bytes[i] / 255.0;
        acc.update(batch_view(scaled.data(), block.rows, d), target_view::class_ids(y.data(), y.size()),
                   images.position() - block.rows);
    }
    std::printf("Fashion-MNIST training set: n = %llu images, D = %zu pixels, C = 10 classes\n\n",
                (unsigned long long)acc.n(), d);

    const spectrum s = exact_spectrum(acc, centering::centered);
    std::printf("Spectrum of the pixel covariance (centered):\n");
    std::printf("  total variance per image: %.4f\n", s.total / static_cast<double>(acc.n()));
    std::printf("  top eigenvalues / n     :");
    for (std::size_t i = 0; i < 5; ++i) std::printf(" %.4f", s.eigenvalues(i) / static_cast<double>(acc.n()));
    std::printf("\n");
    for (double f : {0.5, 0.75, 0.9, 0.95, 0.99})
        std::printf("  %4.0f%% of the variance in the top %zu directions\n", f * 100,
                    k_for_fraction(s.eigenvalues, s.total, f));

    alignment_options opt;
    opt.measure = alignment_measure::paper;
    const alignment_result a = alignment_curve(finish(acc, centering::uncentered), opt);
    std::printf("\nAlignment of the top-k principal subspace with the labels (paper's Eq. 7, uncentered):\n");
    std::printf("  %5s  %12s  %12s\n", "k", "alignment", "eigenvalue/n");
    for (std::size_t k : {1, 2, 5, 10, 20, 50, 100, 200, 392, 784}) {
        if (k > a.max_k) break;
        std::printf("  %5zu  %12.6f  %12.6g\n", k, a.curve(k - 1), a.eigenvalues(k - 1) / static_cast<double>(acc.n()));
    }
    std::printf("  (%zu directions under the eigenvalue tolerance skipped)\n", a.skipped);
    return 0;
} catch (const std::exception& e) {
    std::fprintf(stderr, "fashion_alignment: %s\n", e.what());
    return 1;
}

// Test data for the align tests: the first n Fashion-MNIST training images, pixels / 255,
// optionally 2x2-averaged to 14x14 (D = 196) so that D x D work stays fast on 2 cores.
#pragma once

#include <cstdint>
#include <vector>

#include <recalign/io/datasets.hpp>
#include <recalign/io/idx.hpp>

namespace testing {

struct fashion_subset {
    std::size_t n = 0, side = 0, dim = 0;
    std::vector<double> x;            // n x dim
    std::vector<std::int64_t> y;      // n
    const double* row(std::size_t r) const { return x.data() + r * dim; }
};

inline fashion_subset load_fashion(std::size_t n, bool downsample) {
    const auto files = recalign::io::fashion_mnist();
    recalign::io::idx_reader images(files.train_images), labels(files.train_labels);
    recalign::io::row_block block;
    fashion_subset f;
    f.side = downsample ? 14 : 28;
    f.dim = f.side * f.side;
    images.read(n, block);
    labels.read_labels(block.rows, f.y);
    f.n = block.rows;
    f.x.assign(f.n * f.dim, 0.0);
    for (std::size_t r = 0; r < f.n; ++r) {
        const unsigned char* px = block.bytes.data() + r * 784;
        double* out = f.x.data() + r * f.dim;
        if (!downsample) {
            for (std::size_t i = 0; i < 784; ++i) out[i] = px[i] / 255.0;
        } else {
            for (std::size_t i = 0; i < 14; ++i)
                for (std::size_t j = 0; j < 14; ++j) {
                    const double s = px[(2 * i) * 28 + 2 * j] + px[(2 * i) * 28 + 2 * j + 1] +
                                     px[(2 * i + 1) * 28 + 2 * j] + px[(2 * i + 1) * 28 + 2 * j + 1];
                    out[i * 14 + j] = s / (4.0 * 255.0);
                }
        }
    }
    return f;
}

}  // namespace testing

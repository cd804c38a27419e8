// Where the default data set lives: Fashion-MNIST from the Debian package
// `dataset-fashion-mnist`. The environment variable RECALIGN_FASHION_MNIST (a directory
// holding the four IDX .gz files) overrides the location.
#pragma once

#include <string>

namespace recalign::io {

struct fashion_mnist_files {
    std::string train_images, train_labels, test_images, test_labels;
};

fashion_mnist_files fashion_mnist();

}  // namespace recalign::io

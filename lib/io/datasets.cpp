#include "recalign/io/datasets.hpp"

#include <cstdlib>

namespace recalign::io {

fashion_mnist_files fashion_mnist() {
    const char* env = std::getenv("RECALIGN_FASHION_MNIST");
    const std::string dir = env && *env ? env : "/usr/share/datasets/fashion-mnist";
    return {dir + "/train-images-idx3-ubyte.gz", dir + "/train-labels-idx1-ubyte.gz",
            dir + "/t10k-images-idx3-ubyte.gz", dir + "/t10k-labels-idx1-ubyte.gz"};
}

}  // namespace recalign::io

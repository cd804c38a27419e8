// Catch2 v2's main, compiled once for every test program; exits 77 (meson's SKIP) when no
// test failed but one returned early for lack of its data set (data_sets.hpp).
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <recalign/io/datasets.hpp>

#include "data_sets.hpp"

namespace {
bool data_set_missing = false;
constexpr int meson_skip = 77;

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

bool testing::fashion_mnist_present() {
    const recalign::io::fashion_mnist_files files = recalign::io::fashion_mnist();
    const bool present = exists(files.train_images) && exists(files.train_labels);
    if (!present) data_set_missing = true;
    return present;
}

int main(int argc, char* argv[]) {
    const int failed = Catch::Session().run(argc, argv);
    return failed == 0 && data_set_missing ? meson_skip : failed;
}

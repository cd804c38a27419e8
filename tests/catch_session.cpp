// Catch2 v2's implementation, compiled once for every test program (it is most of a test
// program's compile time: 35 s in a release build, 121 s sanitized), and where a test finds
// its data set (data_sets.hpp). catch_main.cpp holds the main most programs use; a program
// with its own main (tests/dist/test_mpi.cpp: MPI_Init first) links this library alone.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <recalign/io/datasets.hpp>

#include "catch_session.hpp"
#include "data_sets.hpp"

namespace {
bool missing = false;

bool exists(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0;
}
}  // namespace

bool testing::fashion_mnist_present() {
    const recalign::io::fashion_mnist_files files = recalign::io::fashion_mnist();
    const bool present = exists(files.train_images) && exists(files.train_labels);
    if (!present) missing = true;
    return present;
}

bool testing::data_set_missing() { return missing; }

int testing::run_catch_session(int argc, char* argv[]) { return Catch::Session().run(argc, argv); }

// The main of every Catch2 test program (the implementation: catch_session.cpp); exits 77
// (meson's SKIP) when no test failed but one returned early for lack of its data set
// (data_sets.hpp).
#include "catch_session.hpp"
#include "data_sets.hpp"

int main(int argc, char* argv[]) {
    constexpr int meson_skip = 77;
    const int failed = testing::run_catch_session(argc, argv);
    return failed == 0 && testing::data_set_missing() ? meson_skip : failed;
}

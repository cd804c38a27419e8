// A test whose data set is missing reports a skip, not a pass (issue 12 item 7). A TEST_CASE
// that reads Fashion-MNIST starts with RECALIGN_SKIP_WITHOUT_FASHION_MNIST(): without the data
// set it warns and returns, and the main of catch_main.cpp then exits 77 (meson's SKIP)
// when nothing else failed, so that the missing data shows in meson's summary. The other
// test cases of the program still run (and a failure among them still fails it).
#pragma once

namespace testing {

// True when the Fashion-MNIST training images and labels exist (recalign::io::fashion_mnist(),
// so RECALIGN_FASHION_MNIST=DIR moves them); false, and the program's exit status becomes
// 77 if nothing fails, when either is missing.
bool fashion_mnist_present();

// True once fashion_mnist_present() has returned false (catch_main.cpp's exit status).
bool data_set_missing();

}  // namespace testing

#define RECALIGN_SKIP_WITHOUT_FASHION_MNIST()                                                  \
    do {                                                                                      \
        if (!::testing::fashion_mnist_present()) {                                            \
            WARN("Fashion-MNIST is missing (Debian package dataset-fashion-mnist, or "        \
                 "RECALIGN_FASHION_MNIST=DIR): test skipped");                                \
            return;                                                                           \
        }                                                                                     \
    } while (false)

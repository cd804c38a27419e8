// Internal to the Nyström update (not installed): a second thread for the element-wise work
// between its BLAS calls. The GEMMs of an update already run on every BLAS thread; what is left
// between them (converting and centering a column block of the batch, regenerating a block of
// the test matrix, adding a block's float32 product to Y) ran on one thread while the other
// core waited, about a fifth of the float32 path's time at D = 150,528 (docs/benchmarks-log.md, issue 17
// item 1). run() splits such a step in two halves, one per thread, and returns when both are
// done: the steps stay in the same order as the GEMMs (nothing runs beside a GEMM, which would
// only take a core from it), and each element is computed exactly as on one thread, so the
// results are bit-identical with and without the second thread. Where a batch has two column
// blocks or more, the halves are whole blocks with their GEMMs (block_half, one_blas_thread):
// two single-threaded GEMMs side by side outrun one on two OpenBLAS threads at these shapes
// (docs/benchmarks-log.md, the thirty-seventh session).
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <utility>
#include <mutex>
#include <thread>

namespace recalign::detail {

class second_thread {
public:
    // Starts the thread if `wanted`, BLAS runs on at least two threads (a user who asked BLAS
    // for one gets one) and the machine has two; if none can be had, run() does both halves on
    // the calling thread.
    explicit second_thread(bool wanted);
    ~second_thread();
    second_thread(const second_thread&) = delete;
    second_thread& operator=(const second_thread&) = delete;

    bool running() const noexcept { return thread_.joinable(); }

    // For tests (tests/sketch/test_nystrom.cpp): whether a second thread may be started at all
    // (default true), to compare an update with one against the same update without; and how
    // many have been started so far.
    static void allow(bool allowed) noexcept;
    static std::uint64_t started() noexcept;

    // Calls half(0) on the second thread and half(1) on this one; returns when both have
    // returned. `half` must not throw.
    template <class F>
    void run(F& half) {
        run_erased(&call<F>, &half);
    }

private:
    template <class F>
    static void call(void* f, int part) {
        (*static_cast<F*>(f))(part);
    }
    void run_erased(void (*fn)(void*, int), void* context);
    void loop();

    std::thread thread_;
    std::mutex m_;
    std::condition_variable cv_;
    void (*fn_)(void*, int) = nullptr;
    void* context_ = nullptr;
    std::uint64_t posted_ = 0;          // under m_
    bool stop_ = false;                 // under m_
    std::atomic<std::uint64_t> done_{0};  // halves the second thread has finished
};

// The blocks of `block` columns (the last partial) of half `part` (0 or 1) of [0, d): [0, split)
// and [split, blocks) with split = ⌈blocks / 2⌉, for work split by whole blocks between the two
// threads (the Nyström update's and the verification pass's products).
inline std::pair<std::size_t, std::size_t> block_half(std::size_t d, std::size_t block, int part) {
    const std::size_t blocks = (d + block - 1) / block, split = (blocks + 1) / 2;
    return part == 0 ? std::pair<std::size_t, std::size_t>{0, split} : std::pair<std::size_t, std::size_t>{split, blocks};
}

// f(b0, b1, part) for each half `part` of those blocks (block_half), half 0 on the second
// thread and half 1 on this one (both here when there is no second thread).
template <class F>
void over_block_halves(second_thread& two, std::size_t d, std::size_t block, F&& f) {
    auto half = [&](int part) {
        const auto [b0, b1] = block_half(d, block, part);
        f(b0, b1, part);
    };
    two.run(half);
}

// OpenBLAS on one thread while it lives, its previous count restored after: for work split
// between two threads of our own (detail::second_thread), each running one GEMM at a time. The
// count is OpenBLAS's process-wide setting, so a BLAS call another thread of the process makes
// meanwhile runs on one thread too.
class one_blas_thread {
public:
    one_blas_thread();
    ~one_blas_thread();
    one_blas_thread(const one_blas_thread&) = delete;
    one_blas_thread& operator=(const one_blas_thread&) = delete;

private:
    int before_;
};

}  // namespace recalign::detail

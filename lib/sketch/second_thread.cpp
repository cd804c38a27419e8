#include "second_thread.hpp"

#include <cblas.h>

#include <system_error>

namespace recalign::detail {

namespace {
std::atomic<bool> allowed_threads{true};
std::atomic<std::uint64_t> started_threads{0};
}  // namespace

void second_thread::allow(bool allowed) noexcept { allowed_threads.store(allowed); }
std::uint64_t second_thread::started() noexcept { return started_threads.load(); }

second_thread::second_thread(bool wanted) {
    if (!wanted || !allowed_threads.load() || std::thread::hardware_concurrency() < 2 || openblas_get_num_threads() < 2) return;
    try {
        thread_ = std::thread([this] { loop(); });
        ++started_threads;
    } catch (const std::system_error&) {
        // No thread to be had: run() does both halves here (nothing may fail in an update).
    }
}

second_thread::~second_thread() {
    if (!thread_.joinable()) return;
    {
        const std::lock_guard<std::mutex> lock(m_);
        stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
}

void second_thread::loop() {
    std::uint64_t seen = 0;
    for (;;) {
        void (*fn)(void*, int) = nullptr;
        void* context = nullptr;
        {
            std::unique_lock<std::mutex> lock(m_);
            cv_.wait(lock, [&] { return stop_ || posted_ != seen; });
            if (stop_) return;
            seen = posted_;
            fn = fn_;
            context = context_;
        }
        fn(context, 0);
        done_.store(seen, std::memory_order_release);
    }
}

void second_thread::run_erased(void (*fn)(void*, int), void* context) {
    if (!thread_.joinable()) {
        fn(context, 0);
        fn(context, 1);
        return;
    }
    std::uint64_t ticket = 0;
    {
        const std::lock_guard<std::mutex> lock(m_);
        fn_ = fn;
        context_ = context;
        ticket = ++posted_;
    }
    cv_.notify_one();
    fn(context, 1);
    // The halves are about equal: the other is done soon after this one (spin, then let the
    // other threads of a loaded machine have the core).
    for (unsigned spins = 0; done_.load(std::memory_order_acquire) != ticket; ++spins)
        if (spins >= 256) std::this_thread::yield();
}

one_blas_thread::one_blas_thread() : before_(openblas_get_num_threads()) {
    if (before_ != 1) openblas_set_num_threads(1);
}

one_blas_thread::~one_blas_thread() {
    if (before_ != 1) openblas_set_num_threads(before_);
}

}  // namespace recalign::detail

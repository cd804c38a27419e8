// Internal to data_source: decodes image files (folder and list formats) into u8 rows with a
// pool of worker threads, one batch ahead of the caller (double buffering), so that decoding
// runs while the accumulators work on the batch just delivered. The rows, their order and
// every error or skip depend only on the files, never on the number of threads: each sample
// is decoded by one worker into its own row, and errors are looked at in sample order once
// the whole batch is decoded.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "recalign/io/image.hpp"
#include "recalign/io/image_list.hpp"
#include "recalign/io/source.hpp"

namespace recalign::io::detail {

// What an unreadable image's error adds (source.cpp's opening pass and image_stream's reads).
inline constexpr const char* skip_unreadable_hint = " (--skip-unreadable, in Python skip_unreadable=True, skips such files)";

// A fixed set of threads running one task over the indices [0, count) at a time.
class worker_pool {
public:
    explicit worker_pool(std::size_t threads);
    ~worker_pool();
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;
    std::size_t size() const noexcept { return threads_.size(); }
    // Starts task(i, worker) for every i in [0, count) (the task must not throw).
    void start(std::size_t count, std::function<void(std::size_t, std::size_t)> task);
    void wait();  // until the started task has run for every index

private:
    void loop(std::size_t worker);
    std::vector<std::thread> threads_;
    std::mutex m_;
    std::condition_variable work_cv_, done_cv_;
    std::function<void(std::size_t, std::size_t)> task_;
    std::size_t count_ = 0, next_ = 0, running_ = 0;
    std::uint64_t generation_ = 0;
    bool stop_ = false;
};

class image_stream {
public:
    image_stream(std::shared_ptr<const image_list> list, const image_geometry& g, std::size_t out_h, std::size_t out_w,
                 std::size_t threads, bool skip_unreadable);
    ~image_stream();
    std::size_t cols() const noexcept { return cols_; }
    // The samples [first, first + count) into out (u8 rows, labels, skipped files), and
    // starts decoding [first + count, first + count + next_count) in the background.
    void read(std::uint64_t first, std::size_t count, std::size_t next_count, source_batch& out);

private:
    enum class outcome : std::uint8_t { ok, unreadable, wrong_size };
    struct job {
        std::uint64_t first = 0;
        std::size_t count = 0;
        bool started = false;
        std::vector<std::uint8_t> rows;
        std::vector<outcome> outcomes;
        std::vector<std::string> messages;
    };
    struct scratch {
        std::vector<std::uint8_t> bytes;
        image decoded, resized;
    };
    void launch(job& j, std::uint64_t first, std::size_t count);
    void decode_one(job& j, std::size_t i, scratch& s);
    void finish(job& j);  // waits for it

    std::shared_ptr<const image_list> list_;
    image_geometry g_;
    std::size_t out_h_, out_w_, cols_;
    bool skip_unreadable_;
    std::vector<scratch> scratch_;
    job ahead_;
    worker_pool pool_;
};

}  // namespace recalign::io::detail

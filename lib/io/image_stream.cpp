#include "image_stream.hpp"

#include <algorithm>
#include <cstring>

#include "posix_file.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"

namespace recalign::io::detail {

worker_pool::worker_pool(std::size_t threads) {
    if (threads == 0) threads = 1;
    threads_.reserve(threads);
    for (std::size_t w = 0; w < threads; ++w) threads_.emplace_back([this, w] { loop(w); });
}

worker_pool::~worker_pool() {
    {
        std::lock_guard<std::mutex> lock(m_);
        stop_ = true;
    }
    work_cv_.notify_all();
    for (std::thread& t : threads_) t.join();
}

void worker_pool::start(std::size_t count, std::function<void(std::size_t, std::size_t)> task) {
    {
        std::lock_guard<std::mutex> lock(m_);
        task_ = std::move(task);
        count_ = count;
        next_ = 0;
        ++generation_;
    }
    work_cv_.notify_all();
}

void worker_pool::wait() {
    std::unique_lock<std::mutex> lock(m_);
    done_cv_.wait(lock, [&] { return next_ >= count_ && running_ == 0; });
}

void worker_pool::loop(std::size_t worker) {
    std::unique_lock<std::mutex> lock(m_);
    for (;;) {
        work_cv_.wait(lock, [&] { return stop_ || next_ < count_; });
        if (next_ >= count_) return;  // stop_ and nothing left
        const std::size_t i = next_++;
        ++running_;
        lock.unlock();
        task_(i, worker);
        lock.lock();
        --running_;
        if (next_ >= count_ && running_ == 0) done_cv_.notify_all();
    }
}

image_stream::image_stream(std::shared_ptr<const image_list> list, const image_geometry& g, std::size_t out_h,
                           std::size_t out_w, std::size_t threads, bool skip_unreadable)
    : list_(std::move(list)), g_(g), out_h_(out_h), out_w_(out_w),
      cols_(checked_product({out_h, out_w, static_cast<std::size_t>(g.channels)}, "image row size")),
      skip_unreadable_(skip_unreadable), scratch_(threads ? threads : 1), pool_(threads ? threads : 1) {}

image_stream::~image_stream() {
    if (ahead_.started) pool_.wait();
}

void image_stream::launch(job& j, std::uint64_t first, std::size_t count) {
    j.first = first;
    j.count = count;
    j.started = true;
    // Sized once per batch size: no allocation per image or per batch in steady state.
    j.rows.resize(checked_product({count, cols_}, "batch bytes"));
    j.outcomes.assign(count, outcome::ok);
    j.messages.resize(count);
    pool_.start(count, [this, &j](std::size_t i, std::size_t w) { decode_one(j, i, scratch_[w]); });
}

void image_stream::decode_one(job& j, std::size_t i, scratch& s) {
    const image_sample& sample = list_->samples[static_cast<std::size_t>(j.first + i)];
    try {
        std::uint64_t size = 0;
        int fd = open_read(sample.path, size);
        try {
            if (size > (std::uint64_t(1) << 31)) throw file_error(sample.path, "larger than 2 GiB: not an image file");
            s.bytes.resize(static_cast<std::size_t>(size));
            pread_exact(fd, s.bytes.data(), s.bytes.size(), 0, sample.path);
        } catch (...) {
            close_fd(fd);
            throw;
        }
        close_fd(fd);
        decode_image(s.bytes.data(), s.bytes.size(), g_.channels, s.decoded, sample.path);
        const auto hw = output_size(s.decoded.height, s.decoded.width, g_);
        if (hw.first != out_h_ || hw.second != out_w_) {
            j.outcomes[i] = outcome::wrong_size;
            j.messages[i] = sample.path + ": " + std::to_string(s.decoded.height) + "x" + std::to_string(s.decoded.width) +
                            " image gives " + std::to_string(hw.first) + "x" + std::to_string(hw.second) + ", not " +
                            std::to_string(out_h_) + "x" + std::to_string(out_w_) +
                            " as the first image (all rows must have one size: resize and/or crop them, with the CLI's --resize S / "
                            "--crop H,W or Python's resize=S / crop=(H, W))";
            return;
        }
        transform_image(s.decoded, g_, s.resized, j.rows.data() + i * cols_, cols_);
        j.outcomes[i] = outcome::ok;
    } catch (const std::exception& e) {
        j.outcomes[i] = outcome::unreadable;
        j.messages[i] = e.what();
    }
}

void image_stream::finish(job& j) {
    if (!j.started) return;
    pool_.wait();
    j.started = false;
}

void image_stream::read(std::uint64_t first, std::size_t count, std::size_t next_count, source_batch& out) {
    if (ahead_.started && (ahead_.first != first || ahead_.count != count)) finish(ahead_);  // a seek: drop it
    if (!ahead_.started) launch(ahead_, first, count);
    finish(ahead_);
    // In sample order, whatever thread decoded what: the first failure decides.
    out.skipped.clear();
    std::size_t kept = 0;
    for (std::size_t i = 0; i < count; ++i) {
        const std::uint64_t index = first + i;
        const image_sample& s = list_->samples[static_cast<std::size_t>(index)];
        if (ahead_.outcomes[i] != outcome::ok) {
            if (ahead_.outcomes[i] == outcome::unreadable && skip_unreadable_) {
                out.skipped.push_back({index, s.path, ahead_.messages[i]});
                continue;
            }
            const std::string why = ahead_.messages[i];
            ahead_.started = false;
            throw input_error("sample " + std::to_string(index) + ": " + why +
                              (ahead_.outcomes[i] == outcome::unreadable ? skip_unreadable_hint : ""));
        }
        if (kept != i) std::memmove(ahead_.rows.data() + kept * cols_, ahead_.rows.data() + i * cols_, cols_);
        if (out.labels.size() <= kept) out.labels.resize(kept + 1);
        out.labels[kept] = s.label;
        ++kept;
    }
    out.labels.resize(kept);
    out.block.type = dtype::u8;
    out.block.rows = kept;
    out.block.cols = cols_;
    std::swap(out.block.bytes, ahead_.rows);
    out.block.bytes.resize(kept * cols_);
    out.rows = kept;
    out.cols = cols_;
    // The caller's previous buffer becomes the next batch's, decoded while the caller works.
    if (next_count) launch(ahead_, first + count, next_count);
}

}  // namespace recalign::io::detail

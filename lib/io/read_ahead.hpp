// One batch read ahead on a second thread, for sources whose writer stalls while nobody reads
// (pipes): the next batch is read while the caller computes on the current one, so a producer
// piping rows into recalign (a decoder, recalign-synth) runs beside the analysis instead of
// between its batches. Used by data_source::next for array formats read from a pipe.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <thread>

#include "recalign/io/source.hpp"

namespace recalign::io::detail {

class batch_read_ahead {
public:
    batch_read_ahead() = default;
    batch_read_ahead(const batch_read_ahead&) = delete;
    batch_read_ahead& operator=(const batch_read_ahead&) = delete;
    // A read still blocked on its pipe is left to finish on its own (detached: everything it
    // touches is owned by it), so that an error or the end of a run never waits on a writer.
    ~batch_read_ahead();

    bool pending() const noexcept { return static_cast<bool>(job_); }
    std::size_t rows() const noexcept { return job_ ? job_->rows : 0; }
    // Runs read(batch) on a thread for `rows` rows; read owns (captures) what it uses.
    void start(std::size_t rows, std::function<void(source_batch&)> read);
    // Waits for the read; its exception is rethrown (nothing delivered), else its batch is
    // swapped into out (out's buffers become the next read's).
    void take(source_batch& out);
    // Waits for the read and drops it (seek).
    void discard();

private:
    struct job {
        std::size_t rows = 0;
        source_batch batch;
        std::exception_ptr error;
        std::thread worker;
    };
    std::shared_ptr<job> job_;
    source_batch spare_;  // buffers handed to the next read
};

}  // namespace recalign::io::detail

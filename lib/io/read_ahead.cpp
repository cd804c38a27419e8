#include "read_ahead.hpp"

#include <utility>

namespace recalign::io::detail {

batch_read_ahead::~batch_read_ahead() {
    if (job_ && job_->worker.joinable()) job_->worker.detach();
}

void batch_read_ahead::start(std::size_t rows, std::function<void(source_batch&)> read) {
    discard();
    auto j = std::make_shared<job>();
    j->rows = rows;
    j->batch = std::move(spare_);
    // The thread shares the job for as long as it runs: detached by the destructor, it frees
    // the job (and what `read` captured) itself.
    j->worker = std::thread([hold = j, read = std::move(read)]() mutable {
        try {
            read(hold->batch);
        } catch (...) {
            hold->error = std::current_exception();
        }
        hold.reset();
    });
    job_ = std::move(j);
}

void batch_read_ahead::take(source_batch& out) {
    std::shared_ptr<job> j = std::move(job_);
    j->worker.join();
    if (j->error) {
        spare_ = std::move(j->batch);
        std::rethrow_exception(j->error);
    }
    spare_ = std::move(out);
    out = std::move(j->batch);
}

void batch_read_ahead::discard() {
    if (!job_) return;
    std::shared_ptr<job> j = std::move(job_);
    j->worker.join();
    spare_ = std::move(j->batch);
}

}  // namespace recalign::io::detail

// Distributed CLI runs (issue 7), as one explicit object instead of mutable globals:
// `mpirun -n R recalign align|denoise|spectrum|...` shards the input range by whole batches
// (rank r reads only batches [r·B/R, (r+1)·B/R), by offset), checkpoints to FILE.rank<r>
// and resumes per rank, then merges the ranks' states into rank 0, which alone analyses and
// prints; the other ranks exit 0 silently.
//
// Without MPI in the build, or when the process was not started by mpirun, the context is
// inactive and every operation is the single-process identity. Nothing here knows the CLI's
// option parsing: the driver hands it plain values.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "recalign/align/tracker.hpp"
#include "recalign/io/source.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign::cli {

// Thrown on ranks other than 0 once their share is merged (or when there is nothing to
// share, e.g. --from): exit status 0 with no output.
struct not_root {};

// A refusal every rank reaches alike, at the same point. Rank 0 alone prints it; every rank
// exits 2 and the job ends through MPI_Finalize, not MPI_Abort.
struct collective_refusal : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};

// One rank's share of a row range, and the whole range it belongs to.
struct shard {
    io::source_options options;       // this rank's range (skip, limit)
    std::uint64_t whole_first_row = 0, whole_rows = 0;
};

class mpi_context {
public:
    // Initialises MPI when this build has it and the process was started by mpirun.
    mpi_context(int& argc, char**& argv);
    mpi_context(const mpi_context&) = delete;
    mpi_context& operator=(const mpi_context&) = delete;
    ~mpi_context();
    // Finalises MPI, or, when this rank failed and others may wait for it in a reduction,
    // aborts the job. Returns `status`.
    int finish(int status);
    void refused_alike() { refused_alike_ = true; }

    bool active() const noexcept { return active_; }
    int rank() const noexcept { return rank_; }
    int size() const noexcept { return size_; }
    // FILE -> FILE.rank<r> under mpirun.
    std::string rank_file(const std::string& path) const;

    // This rank's share of `whole` (rows = the whole range's row count, from the header).
    shard share(const io::source_options& whole, std::uint64_t rows) const;
    // Collective, before any data is read: every rank must agree on these (name, value)
    // pairs; else every rank throws collective_refusal naming the ranks and values.
    void require_agreement(std::vector<std::pair<std::string, std::string>> fields) const;
    // Collective reductions into rank 0 (nullopt on the other ranks; the value itself when
    // inactive).
    std::optional<moment_accumulator> reduce(const moment_accumulator& local) const;
    std::optional<alignment_tracker> reduce(const alignment_tracker& local) const;
    using merge_fn = std::function<std::string(const std::string& lower, const std::string& upper)>;
    std::optional<std::string> reduce_bytes(std::string local, const merge_fn& merge) const;
    std::uint64_t sum(std::uint64_t local) const;
    // Collective: rank 0's `bytes` on every rank (the value itself when inactive).
    std::string broadcast_bytes(std::string bytes) const;

private:
    bool active_ = false, finished_ = false, refused_alike_ = false;
    int rank_ = 0, size_ = 1;
    std::string command_line_;
};

}  // namespace recalign::cli

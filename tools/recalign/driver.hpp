// The one streaming driver of the CLI: every command and every pass reads its data through
// `drive`, whatever the state (stream_state.hpp). It owns the data source, resume (the
// checkpoint's configuration and input fingerprints must match), periodic atomic
// checkpoints, SIGINT/SIGTERM (checkpoint, then exit 130), multi-pass states (Nyström power
// iterations), the progress line and, under mpirun, the shard of each rank and the merge
// into rank 0 (mpi_context.hpp).
#pragma once

#include <cstdint>
#include <string>

#include "mpi_context.hpp"
#include "recalign/io/source.hpp"
#include "run_state.hpp"
#include "stream_state.hpp"

namespace recalign::cli {

// Thrown after an interrupted run saved its checkpoint: exit status 130.
struct interrupted {};

// What tests inject (never read from the environment): a delay after every batch, so that
// a test can interrupt or kill a run mid-way.
struct driver_hooks {
    unsigned batch_delay_ms = 0;
};

struct drive_options {
    std::string command;          // recorded in the checkpoint
    std::string checkpoint;       // empty: none (under mpirun, FILE.rank<r> is used)
    std::uint64_t checkpoint_every = 0;
    bool resume = false, quiet = false;
    driver_hooks hooks;
};

// The input of a run: the whole row range (validated, before sharding) and the
// configuration that decides the accumulated numbers.
struct drive_input {
    io::source_options source;
    std::uint64_t rows = 0;  // rows of the whole range (from the files' headers)
    run_config config;
    std::uint64_t batch_bytes = 0;  // the batches held at once as read (io::data_source::batch_bytes)
};

// Streams the range through `state`, all its passes. Returns the run state describing the
// whole input (accumulator bytes not kept). Under mpirun, returns on rank 0 only (the other
// ranks throw not_root after the merge).
run_state drive(stream_state& state, const drive_input& input, const drive_options& options, const mpi_context& mpi);

// --from: loads a checkpoint's state (already read and validated) into `state`; notes on
// stderr when it is a partial run. Under mpirun, ranks other than 0 throw not_root.
// `file`: the checkpoint `from` was read from, whose state is then read where it lies (from's
// accumulator bytes otherwise). `command`: this run's, named with the checkpoint's when the
// state is of a kind this command cannot read.
run_state drive_from(stream_state& state, run_state from, const std::string& path, bool quiet, const mpi_context& mpi,
                     const std::string& command, const checkpoint_file* file = nullptr);

// Saves `state` with the run state `st` to `path`, atomically.
void save_checkpoint(const std::string& path, run_state& st, const stream_state& state);

}  // namespace recalign::cli

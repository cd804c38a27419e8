// Distributed CLI runs (issue 7): `mpirun -n R recalign align|denoise|spectrum|...` shards the
// input range by whole batches (rank r reads only batches [r·B/R, (r+1)·B/R), by offset: the
// data source's skip/limit), checkpoints to FILE.rank<r> and resumes per rank, then merges the
// ranks' states into rank 0 (dist/mpi.hpp: the exact two-stage Chan merge for the moments),
// which alone analyses and prints; the other ranks exit 0 silently.
//
// Without MPI in the build, or when the process was not started by mpirun, every function
// here is a no-op and the CLI runs as a single process.
#pragma once

#include <stdexcept>
#include <string>

#include "commands.hpp"
#include "engine.hpp"
#include "recalign/io/source.hpp"
#include "run_state.hpp"

namespace recalign::cli::dist_hook {

// Thrown on ranks other than 0 once their share is merged (or when there is nothing to
// share, e.g. --from): run_selected turns it into exit status 0 with no output.
struct not_root {};

// A refusal every rank reaches alike, at the same point (a collective check, or arithmetic
// every rank does on the same numbers). Rank 0 alone prints it; every rank exits 2 and the
// job ends through MPI_Finalize, not MPI_Abort (no rank is left waiting for another).
struct collective_refusal : std::invalid_argument {
    using std::invalid_argument::invalid_argument;
};
// Called on every rank that caught a collective_refusal, before finish().
void refused_alike();

// Initialises MPI when this build has it and the process was started by mpirun; finish()
// finalises it, or, when this rank failed and others may be waiting for it in a reduction,
// aborts the whole job (so that no rank waits forever).
class session {
public:
    session(int& argc, char**& argv);
    session(const session&) = delete;
    session& operator=(const session&) = delete;
    ~session();
    int finish(int status);

private:
    bool finished_ = false;
};

bool active();  // MPI initialised by session (even with one rank)
int rank();
int size();

// --checkpoint FILE becomes FILE.rank<r>. With --from there is nothing to shard: ranks other
// than 0 throw not_root.
run_args per_rank(const run_args& r);

// This rank's share of the source's row range (whole batches, contiguous, in rank order).
io::source_options shard_options(const io::source_options& whole);
template <class Resolved>
Resolved shard(Resolved resolved) {
    resolved.options = shard_options(resolved.options);
    return resolved;
}

// Collective, before any data is read: the ranks must agree on the command line, the run
// configuration and the fingerprints of the input files; else every rank refuses (exit 2)
// with the same message naming the disagreeing ranks and values.
void check_agreement(const std::string& command, const run_config& config, const input_segment& segment);

// Collective, after this rank's share is read: merges every rank's state into rank 0 and
// makes rank 0's segment describe the whole range. Returns on rank 0; throws not_root on
// the other ranks.
void reduce(run_state& state, engine& eng);

}  // namespace recalign::cli::dist_hook

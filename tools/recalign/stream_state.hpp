// What the streaming driver feeds: one interface over any accumulator or set of
// accumulators (a route's accumulator with its class statistics, the denoising tracker with
// its Monte-Carlo noises), so that resume, checkpoints, signals, passes and MPI are written
// once, in driver.cpp, for every command and every pass.
#pragma once

#include <cstdint>
#include <string>

#include "recalign/io/source.hpp"
#include "state_io.hpp"

namespace recalign::cli {

class mpi_context;

class stream_state {
public:
    virtual ~stream_state() = default;
    // Passes over the row range this state needs (Nyström power iterations: Q).
    virtual std::uint64_t passes() const { return 1; }
    // Adds one batch of pass `pass`; a bad batch throws std::invalid_argument naming the row
    // and leaves the state as it was (strong guarantee).
    virtual void update(const io::source_batch& b, std::uint64_t pass) = 0;
    // Ends the current pass and starts the next one. Collective under mpirun (every rank calls
    // it at the same point): a next pass that depends on the data of every rank (Nyström's
    // power-iteration basis, a verification pass's basis) is computed once, on rank 0, from
    // the ranks' merged states, and handed to every rank, so that all ranks read their shards
    // against the same bits.
    virtual void next_pass(const mpi_context&) {}
    // Called after pass `pass` was read in full: how many of the following passes the state
    // no longer needs (a sketch whose --tolerance is met skips its remaining sketch passes;
    // the driver counts them as done, so checkpoints and resume see a finished sketch).
    virtual std::uint64_t passes_to_skip(std::uint64_t /*pass*/) { return 0; }
    // Whether pass `pass` reads the data at all (a refinement that stopped early at the last
    // next_pass, collectively: the driver skips reading and passes_to_skip ends the run).
    virtual bool reads(std::uint64_t /*pass*/) const { return true; }
    // Passes this state read (or will read) in all: passes() unless a stop ended them early.
    virtual std::uint64_t passes_read() const { return passes(); }
    virtual std::uint64_t n() const = 0;
    // The nested checkpoint bytes; load refuses a state of another configuration (file_error
    // naming `source`).
    virtual std::string save() const = 0;
    virtual void load(const std::string& bytes, const std::string& source) = 0;
    // The same bytes as they are made (state_io.hpp: into a checkpoint file, a string, or only
    // counted), and read from where they lie (a checkpoint file: part by part, --resume). A state
    // whose bytes are large streams them (verified_state, route_state, ...); the defaults go
    // through save() and load() (a state of a few KB, or one held as bytes anyway).
    virtual void save_to(state_sink& sink) const {
        const std::string b = save();
        sink.put(b.data(), b.size());
    }
    virtual void load_from(const state_source& src) {
        loaded_at = src.at();
        load(src.all(), src.name());
    }
    // Where load's bytes start in the file `source` (the byte offsets of its errors): set by
    // whoever calls load (the driver; a wrapper for the state it wraps).
    std::uint64_t loaded_at = 0;
    // Collective under mpirun: merges every rank's state into rank 0's (the other ranks'
    // states are left unspecified).
    virtual void reduce(const mpi_context& mpi) = 0;
    // Merges a state of the same type and configuration (merge); std::invalid_argument naming
    // what differs, before any change.
    virtual void merge(const stream_state& other) = 0;
    // Under mpirun, every rank has loaded the same merge of shards (every row of the range, at
    // the end of a pass): the next pass boundary takes rank 0's state as the whole range's
    // instead of merging the ranks' (which would count each row once per rank), and the other
    // ranks then continue with nothing of it but what the next pass reads. False: this state
    // cannot (the driver refuses the resume).
    virtual bool hold_whole() { return false; }
};

}  // namespace recalign::cli

// Distributed reductions over MPI (built only when meson finds MPI: -Dmpi=auto|enabled).
//
// Every rank streams its own shard of the data into its own accumulator; these functions
// combine the R states into the state one process would have after reading all the data.
// The combination order is fixed by the rank count alone (rank order, or a fixed binary tree
// over ranks), never by message arrival and never by MPI_Reduce/MPI_SUM, whose summation
// order is up to the implementation: a given rank count always gives the same bits.
//
//   * moment_accumulator — exact two-stage Chan merge (MATH.md §1): first the global n and
//     mean (a fixed tree of Chan merges of (n_r, μ_r) on the root, broadcast), then the sum
//     of the centered scatters each shifted to that mean, M = Σ_r [M_r + n_r (μ_r − μ)(μ_r − μ)ᵀ],
//     added over a fixed binary tree of point-to-point exchanges of packed upper triangles
//     (P(P+1)/2 doubles per edge, sent in chunks, so memory stays O(P²) on every rank).
//   * frequent_directions, nystrom_sketch, alignment_tracker — a fixed binary tree of their
//     own merge (FD: stack and shrink; Nyström: sum of the ranges; tracker: as a whole),
//     moving states as checkpoint bytes.
//
// Before any of that, the ranks exchange their configuration (MPI_Allgather of a few named
// fields) and refuse, on every rank with the same message, when they disagree: dimension,
// ℓ, seed, noise models, ... — so a reduction never deadlocks half-way on a merge that one
// rank refuses. The CLI adds its input fingerprints to the same check.
//
// All functions are collective over `comm`: every rank must call them in the same order.
#pragma once

// The C API only: the deprecated MPI C++ bindings are neither needed nor warning-free.
#ifndef OMPI_SKIP_MPICXX
#define OMPI_SKIP_MPICXX 1
#endif
#ifndef MPICH_SKIP_MPICXX
#define MPICH_SKIP_MPICXX 1
#endif
#include <mpi.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/align/tracker.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/stats/moments.hpp"

namespace recalign::dist {

// Thrown on every rank, with the same message, when the ranks' configurations disagree.
class rank_disagreement : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

// One named configuration value, as text (it appears as is in the refusal message).
struct config_field {
    std::string name;
    std::string value;
};

// Collective: every rank passes its fields (same names, same order). If any field differs
// between ranks, every rank throws rank_disagreement:
//   "<what>: ranks disagree on dimension (784 on ranks 0, 2; 785 on rank 1); seed (...)".
void require_agreement(MPI_Comm comm, const std::vector<config_field>& fields, const std::string& what);

// The fields each reduction checks (exposed so that callers can extend them).
std::vector<config_field> agreement_fields(const moment_accumulator& m);
std::vector<config_field> agreement_fields(const frequent_directions& fd);
std::vector<config_field> agreement_fields(const nystrom_sketch& s);
std::vector<config_field> agreement_fields(const alignment_tracker& t);

// reduce: the merged state on `root`, std::nullopt on the other ranks. The local states are
// not modified. all_reduce: the merged state on every rank, bit-identical everywhere (the
// root's result is broadcast as checkpoint bytes).
std::optional<moment_accumulator> reduce(const moment_accumulator& local, MPI_Comm comm, int root = 0);
moment_accumulator all_reduce(const moment_accumulator& local, MPI_Comm comm);

std::optional<frequent_directions> reduce(const frequent_directions& local, MPI_Comm comm, int root = 0);
frequent_directions all_reduce(const frequent_directions& local, MPI_Comm comm);

std::optional<nystrom_sketch> reduce(const nystrom_sketch& local, MPI_Comm comm, int root = 0);
nystrom_sketch all_reduce(const nystrom_sketch& local, MPI_Comm comm);

std::optional<alignment_tracker> reduce(const alignment_tracker& local, MPI_Comm comm, int root = 0);
alignment_tracker all_reduce(const alignment_tracker& local, MPI_Comm comm);

// The merge tree itself, on serialized states, for callers whose state is not one of the
// above (the CLI's engine). merge(a, b) returns the bytes of a merged with b, where a holds
// lower ranks than b. The tree: at step s = 1, 2, 4, ..., the rank at relative position v
// (v ≡ 0 mod 2s) merges in the state of v + s. Returns the merged bytes on root.
using merge_bytes_fn = std::function<std::string(const std::string& lower, const std::string& upper)>;
std::optional<std::string> tree_reduce_bytes(MPI_Comm comm, std::string local, const merge_bytes_fn& merge,
                                             int root = 0);

// Broadcast of a byte string of any length (chunked under MPI's int counts) from root.
std::string broadcast_bytes(MPI_Comm comm, std::string bytes, int root = 0);

// Rank and size of comm (checked).
int rank_of(MPI_Comm comm);
int size_of(MPI_Comm comm);

}  // namespace recalign::dist

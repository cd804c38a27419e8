#pragma once
// The verified state's bytes (tools/recalign/verified_state.cpp): a basis broadcast from rank 0,
// and the refinement statistics a checkpoint carries (incremental refinement's carried and final
// statistics), written as they are made (state_io.hpp) and read back with every shape checked at
// its byte offset, the carried D x K matrices straight from the checkpoint into spill files.

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "recalign/align/incremental_refinement.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "state_io.hpp"

namespace recalign::cli {

// A basis as bytes: [u64 rows][u64 cols][row-major doubles] (rank 0 -> every rank).
std::string matrix_bytes(const matrix_t& m);
matrix_t bytes_matrix(const std::string& s);

void put_vector(state_sink& out, const vector_t& v);
vector_t get_vector(source_reader& r);

// The statistics as one part ([u64 length][bytes]); `spilled`: the pass whose basis is on disk
// (s is its `known`); Sxx V may be on disk (sv_stored). Matrices on disk are copied by blocks.
void put_statistics(state_sink& out, const restricted_statistics& s, const refinement_pass* spilled = nullptr);

// The statistics of the part `src`. `carried`: a refinement pass's known statistics (its basis
// and Sxx V read into unlinked files in `spill_dir`, never into memory: the returned pass is
// spilled); none: a whole pass's, in memory (`spill_dir` unused).
refinement_pass read_statistics(const state_source& src, std::optional<std::uint64_t> carried = std::nullopt,
                                const std::string& spill_dir = std::string());

// What the statistics know of Vᵀ Bd V (restricted_statistics::blocks_known: a refinement pass's
// carried Rᵀ Bd R, the final pass's) as one part: [u64 count] then per set of blocks [u64
// geometry][u64 D][u64 n][matrix]. Without it a resumed run would sweep the blocks in full and
// round differently from one that did not stop.
void put_known_blocks(state_sink& out, const restricted_statistics& s);
// Read into `s` from the part `src`: each square, at most `k` x `k` (the columns it may know:
// a refinement pass's carried ones, a whole pass's K) and of dimension `d` and s's n; refused at
// its offset otherwise, with `s` unchanged.
void read_known_blocks(const state_source& src, restricted_statistics& s, std::size_t k, std::size_t d);

}  // namespace recalign::cli

#pragma once
// The verified state's bytes (tools/recalign/verified_state.cpp): a basis broadcast from rank 0,
// and the refinement statistics a checkpoint carries (incremental refinement's carried and final
// statistics), written in place and read back with every shape checked at its byte offset.

#include <cstdint>
#include <optional>
#include <string>

#include "recalign/align/incremental_refinement.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "state_bytes.hpp"

namespace recalign::cli {

// A basis as bytes: [u64 rows][u64 cols][row-major doubles] (rank 0 -> every rank).
std::string matrix_bytes(const matrix_t& m);
matrix_t bytes_matrix(const std::string& s);

void put_f64(std::string& out, double v);
double get_f64(state_reader& r);
void put_vector(std::string& out, const vector_t& v);
vector_t get_vector(state_reader& r);

// `spilled`: the pass whose basis is on disk (s is its `known`); Sxx V may be on disk (sv_stored).
// The bytes append_statistics adds (reserve them first), and the statistics as one part
// ([u64 length][bytes]) appended to `out`, the spilled matrices read from their files into it.
std::size_t statistics_size(const restricted_statistics& s, const refinement_pass* spilled = nullptr);
void append_statistics(std::string& out, const restricted_statistics& s, const refinement_pass* spilled = nullptr);

// `at`: where `bytes` start in the file `source` (the offsets of its errors). `carried`: a
// refinement pass's known statistics; none: a whole pass's.
restricted_statistics bytes_statistics(const std::string& bytes, const std::string& source, std::uint64_t at,
                                       std::optional<std::uint64_t> carried = std::nullopt);

}  // namespace recalign::cli

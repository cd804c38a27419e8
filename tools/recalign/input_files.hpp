// The CLI's view of an input made of many files (image folders, lists, several --images):
// what changed between a checkpoint's files and today's, the decoding options a resume must
// keep, and the skipped files of every MPI rank gathered into rank 0.
#pragma once

#include <string>
#include <vector>

#include "mpi_context.hpp"
#include "recalign/io/source.hpp"

namespace recalign::cli {

// Empty when nothing changed, else counts and the first added, removed and changed file, in
// the stream's order.
std::string files_difference(const std::vector<io::file_entry>& before, const std::vector<io::file_entry>& now);

// The options that turn image files or CIFAR records into rows, e.g. "channels=3 resize=64
// crop=64,64 layout=hwc" (empty for the array formats).
std::string decoding_text(const io::data_source& src);

// Collective under mpirun: every rank's skipped files into rank 0's list, in rank order
// (= sample order: the ranks' shares are consecutive). Nothing to do without MPI.
void gather_skipped(const mpi_context& mpi, std::vector<io::skipped_file>& skipped);

}  // namespace recalign::cli

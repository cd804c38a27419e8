// The commands: each validates its options before reading any data, streams through the
// driver, computes its result struct (results.hpp) and hands it to the renderers. One file
// per command (cmd_<name>.cpp); each returns the exit status of a success (errors throw).
#pragma once

#include "mpi_context.hpp"
#include "options.hpp"

namespace recalign::cli {

int cmd_align(const align_options& o, const mpi_context& mpi);
int cmd_spectrum(const spectrum_options& o, const mpi_context& mpi);
int cmd_project(const project_options& o, const mpi_context& mpi);
int cmd_tradeoff(const tradeoff_cli_options& o, const mpi_context& mpi);
int cmd_denoise(const denoise_cli_options& o, const mpi_context& mpi);
int cmd_figures(const figures_cli_options& o, const mpi_context& mpi);
int cmd_merge(const merge_options& o);
int cmd_info(const info_options& o);

}  // namespace recalign::cli

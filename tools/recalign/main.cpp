// recalign: the command-line tool. Streams a data set (IDX, .npy or raw; the Fashion-MNIST
// training set by default) through an accumulator, with progress, checkpoint/resume and
// merge, then prints the analyses as text or JSON and writes CSV files and charts.
//
// Exit status: 0 success; 2 a user error (bad option, unreadable or malformed input,
// mismatched checkpoint), reported as one line on stderr naming the file, byte offset or
// row; 1 an internal error; 130 interrupted (after writing the checkpoint, if any).
#include <CLI/CLI.hpp>

#include <cstdio>
#include <new>
#include <string>
#include <system_error>

#include "commands.hpp"
#include "driver.hpp"
#include "mpi_context.hpp"
#include "options.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/lock.hpp"

using namespace recalign;
using namespace recalign::cli;

namespace {

int fail(int code, const std::string& what) {
    std::string msg = what;
    for (char& ch : msg)
        if (ch == '\n') ch = ' ';
    std::fflush(stdout);
    std::fprintf(stderr, "recalign: %s%s\n", code == 1 ? "internal error: " : "", msg.c_str());
    return code;
}

int dispatch(const command_line& c, const mpi_context& mpi) {
    if (c.align->parsed()) return cmd_align(c.align_opts, mpi);
    if (c.spectrum->parsed()) return cmd_spectrum(c.spectrum_opts, mpi);
    if (c.project->parsed()) return cmd_project(c.project_opts, mpi);
    if (c.tradeoff->parsed()) return cmd_tradeoff(c.tradeoff_opts, mpi);
    if (c.denoise->parsed()) return cmd_denoise(c.denoise_opts, mpi);
    if (c.figures->parsed()) return cmd_figures(c.figures_opts, mpi);
    if (c.merge->parsed()) return cmd_merge(c.merge_opts);
    if (c.info->parsed()) return cmd_info(c.info_opts);
    return fail(2, "no command given (see --help)");
}

// Runs the parsed command; every error becomes one line on stderr and an exit status.
int run_command(const command_line& c, mpi_context& mpi) {
    try {
        return dispatch(c, mpi);
    } catch (const interrupted&) {
        return 130;
    } catch (const not_root&) {
        return 0;
    } catch (const collective_refusal& e) {
        mpi.refused_alike();
        return mpi.rank() == 0 ? fail(2, e.what()) : 2;
    } catch (const io::lock_error& e) {
        return fail(2, e.what());  // another run holds the checkpoint
    } catch (const file_error& e) {
        return fail(2, e.what());
    } catch (const user_error& e) {
        return fail(2, e.what());
    } catch (const std::invalid_argument& e) {
        return fail(2, e.what());
    } catch (const std::system_error& e) {
        return fail(2, e.what());
    } catch (const std::bad_alloc&) {
        return fail(1, "out of memory");
    } catch (const std::exception& e) {
        return fail(1, e.what());
    }
}

}  // namespace

int main(int argc, char** argv) {
    mpi_context mpi(argc, argv);  // MPI, when started by mpirun
    CLI::App app{"recalign: how the reconstruction (top principal) subspace of a data set aligns with a "
                 "supervised task, computed in one streaming pass over data larger than memory."};
    app.require_subcommand(1);
    app.footer("Run 'recalign COMMAND --help' for the options of a command.");
    app.set_version_flag("--version", "recalign 0.1.0");
    command_line commands;
    register_commands(app, commands);
    try {
        app.parse(argc, argv);
    } catch (const CLI::CallForHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForAllHelp& e) {
        return app.exit(e);
    } catch (const CLI::CallForVersion& e) {
        return app.exit(e);
    } catch (const CLI::ParseError& e) {
        std::string msg = e.what();
        for (char& c : msg)
            if (c == '\n') c = ' ';
        std::fprintf(stderr, "recalign: %s (see --help)\n", msg.c_str());
        return 2;
    }
    for (int i = 0; i < argc; ++i) commands.figures_opts.command_text += (i ? " " : "") + std::string(argv[i]);
    return mpi.finish(run_command(commands, mpi));
}

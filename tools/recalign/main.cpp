// recalign: the command-line tool. Streams a data set (IDX, .npy or raw; the Fashion-MNIST
// training set by default) through an accumulator, with progress, checkpoint/resume and
// merge, then prints the analyses as text or JSON and writes CSV files and charts.
//
// Exit status: 0 success; 2 a user error (bad option, unreadable or malformed input,
// mismatched checkpoint), reported as one line on stderr naming the file, byte offset or
// row; 1 an internal error; 130 interrupted (after writing the checkpoint, if any).
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <nlohmann/json.hpp>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>
#include <system_error>
#include <thread>
#include <vector>

#include "commands.hpp"
#include "dist_hook.hpp"
#include "recalign/core/errors.hpp"

using namespace recalign;
using namespace recalign::cli;

int main(int argc, char** argv) {
    dist_hook::session mpi(argc, argv);  // MPI, when started by mpirun (dist_hook.hpp)
    CLI::App app{"recalign: how the reconstruction (top principal) subspace of a data set aligns with a "
                 "supervised task, computed in one streaming pass over data larger than memory."};
    app.require_subcommand(1);
    app.footer("DATA defaults to the Fashion-MNIST training set (60000 images with labels, pixels scaled by 1/255).\n"
               "Run 'recalign COMMAND --help' for the options of a command.");
    app.set_version_flag("--version", "recalign 0.1.0");
    command_set commands;
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
    return mpi.finish(run_selected(commands));
}

// Checks on the paths a command reads and writes, made before any data is read, and the
// atomic writing of every output file (temporary file in the same directory, fsync, rename,
// fsync of the directory: a failed or interrupted run never leaves a truncated output).
#pragma once

#include <string>
#include <vector>

namespace recalign::cli {

bool file_exists(const std::string& path);
// PATH names a directory (following symbolic links).
bool is_directory(const std::string& path);
// "-" (standard input), a pipe, FIFO or character device: data that can be read only once.
bool is_pipe(const std::string& path);

// An input file must exist, be a regular file (not a directory) and not be empty:
// file_error naming it (no byte offset: an error of the whole file) otherwise.
void require_input_file(const std::string& path);

// FILE can be written atomically: its directory exists and is writable, FILE is not a
// directory; or FILE is an existing pipe or device (/dev/stdout) that can be written, in place.
// user_error naming `option` otherwise.
void require_writable_parent(const char* option, const std::string& path);
// The same for a state written to be read back (a checkpoint, merge's output), which must be a
// regular file: "-", a pipe, FIFO or device is refused too (an output file is written to one in
// place, checkpoint::atomic_writer; a state's header is written last, over its start).
void require_state_file(const char* option, const std::string& path);

// DIR is a writable directory or can be created (its nearest existing ancestor is a
// writable directory), and none of the `files` the command will write in it is an existing
// directory (which no file can replace: found only at the end of the run otherwise).
// user_error naming `option` otherwise.
void require_output_dir(const char* option, const std::string& dir, const std::vector<std::string>& files = {});

// The files of a chart drawn as BASE.png (and BASE.svg when `svg`): the image(s) and the
// gnuplot script BASE.gp a user re-runs.
std::vector<std::string> chart_files(const std::string& base, bool svg = false);

// Creates a directory and its parents; user_error naming it.
void make_dirs(const std::string& dir);

// Writes `bytes` to `path` atomically; a failure is a user_error naming the path.
void write_output_file(const std::string& path, const std::string& bytes);

// dir + "/" + name.
std::string out_path(const std::string& dir, const std::string& name);

}  // namespace recalign::cli

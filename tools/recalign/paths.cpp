#include "paths.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "options.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/files.hpp"

namespace recalign::cli {

namespace {
std::string parent_of(const std::string& path) {
    const auto slash = path.find_last_of('/');
    if (slash == std::string::npos) return ".";
    return slash == 0 ? "/" : path.substr(0, slash);
}
bool writable_directory(const std::string& dir) { return is_directory(dir) && ::access(dir.c_str(), W_OK | X_OK) == 0; }
}  // namespace

bool file_exists(const std::string& path) { return ::access(path.c_str(), F_OK) == 0; }

bool is_directory(const std::string& path) {
    struct stat st {};
    return ::stat(path.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

bool is_pipe(const std::string& path) { return path == "-" || checkpoint::is_pipe_or_device(path); }

void require_input_file(const std::string& path) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw file_error(path, std::string("cannot open: ") + std::strerror(errno));
    if (S_ISDIR(st.st_mode)) throw file_error(path, "is a directory, not a file");
    if (S_ISREG(st.st_mode) && st.st_size == 0) throw file_error(path, "empty file (0 bytes)");
}

void require_writable_parent(const char* option, const std::string& path) {
    if (is_directory(path)) throw user_error(std::string(option) + " " + path + ": is a directory, not a file");
    if (checkpoint::is_pipe_or_device(path)) {  // written in place (checkpoint::atomic_writer), not beside
        if (::access(path.c_str(), W_OK) != 0)
            throw user_error(std::string(option) + " " + path + ": a pipe or device that cannot be written");
        return;
    }
    const std::string dir = parent_of(checkpoint::write_target(path));  // a link's file is replaced
    if (!writable_directory(dir))
        throw user_error(std::string(option) + " " + path + ": directory " + dir + " is not writable or does not exist");
}

void require_state_file(const char* option, const std::string& path) {
    if (is_pipe(path))
        throw user_error(std::string(option) + " " + path +
                         ": is a pipe or device; a checkpoint is a regular file, written atomically and read back");
    require_writable_parent(option, path);
}

void require_output_dir(const char* option, const std::string& dir, const std::vector<std::string>& files) {
    if (file_exists(dir)) {
        if (!is_directory(dir)) throw user_error(std::string(option) + " " + dir + ": exists and is not a directory");
        if (!writable_directory(dir)) throw user_error(std::string(option) + " " + dir + ": directory is not writable");
        for (const std::string& f : files)
            if (is_directory(out_path(dir, f)))
                throw user_error(std::string(option) + " " + dir + ": " + f +
                                 " is a directory there, and this command writes a file of that name");
        return;
    }
    std::string up = dir;
    while (!file_exists(up) && up != "." && up != "/") up = parent_of(up);
    if (!writable_directory(up))
        throw user_error(std::string(option) + " " + dir + ": cannot be created (" + up +
                         " is not a writable directory)");
}

void make_dirs(const std::string& dir) {
    std::string cur;
    for (std::size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
                throw user_error("cannot create directory " + cur + ": " + std::strerror(errno));
        }
        if (i < dir.size()) cur += dir[i];
    }
    if (!is_directory(dir)) throw user_error(dir + " is not a directory");
}

void write_output_file(const std::string& path, const std::string& bytes) {
    try {
        checkpoint::write_file_atomic(path, bytes);
    } catch (const std::system_error& e) {
        throw user_error(e.what());  // names the path and the failed step
    }
}

std::vector<std::string> chart_files(const std::string& base, bool svg) {
    std::vector<std::string> files{base + ".png", base + ".gp"};
    if (svg) files.push_back(base + ".svg");
    return files;
}

std::string out_path(const std::string& dir, const std::string& name) {
    return !dir.empty() && dir.back() == '/' ? dir + name : dir + "/" + name;  // --out fig/: no fig//x
}

}  // namespace recalign::cli

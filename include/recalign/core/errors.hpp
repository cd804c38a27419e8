// Error types. Two families, so that callers can tell "you gave me something wrong" from
// "the machine or a file let us down":
//  * std::invalid_argument (and recalign::input_error, which is one) for bad arguments and
//    bad data handed to update/merge: the object is left exactly as it was;
//  * recalign::file_error (a std::runtime_error) for unreadable, truncated or corrupt files,
//    always naming the file, and the byte offset where the error is at a byte of it;
//  * recalign::numerical_error for a LAPACK routine rejecting its arguments (a bug, not a
//    numerical outcome: outcomes such as non-convergence are reported in result structs).
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>

namespace recalign {

class input_error : public std::invalid_argument {
public:
    using std::invalid_argument::invalid_argument;
};

class file_error : public std::runtime_error {
public:
    // What was wrong at a byte of the file: "FILE: byte offset N: WHAT".
    file_error(const std::string& file, std::uint64_t offset, const std::string& what)
        : std::runtime_error(file + ": byte offset " + std::to_string(offset) + ": " + what),
          file_(file), offset_(offset) {}
    // What was wrong with the file (or directory) as a whole, no byte of it to name (it cannot
    // be opened, is not a directory, holds rows of another width...): "FILE: WHAT".
    file_error(const std::string& file, const std::string& what)
        : std::runtime_error(file + ": " + what), file_(file) {}
    const std::string& file() const noexcept { return file_; }
    // The byte the error is at; empty for an error of the whole file.
    std::optional<std::uint64_t> offset() const noexcept { return offset_; }

private:
    std::string file_;
    std::optional<std::uint64_t> offset_;
};

class numerical_error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

}  // namespace recalign

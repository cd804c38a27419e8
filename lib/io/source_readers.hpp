// The readers behind io::data_source (one per array format): private to lib/io.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "recalign/io/source.hpp"

namespace recalign::io {

// One interface over the array readers (IDX, NPY, raw, CIFAR).
struct data_source::reader {
    virtual ~reader() = default;
    virtual std::uint64_t rows() const = 0;
    virtual std::size_t cols() const = 0;
    virtual std::string type_name() const = 0;
    virtual dtype delivery() const = 0;  // the type of the rows read() delivers
    virtual void skip(std::uint64_t n) = 0;
    virtual std::size_t read(std::size_t n, row_block& out) = 0;
    virtual std::size_t read_labels(std::size_t n, std::vector<std::int64_t>& out) = 0;
    // CIFAR: the labels of the rows the last read() delivered (no second reader).
    virtual const std::vector<std::int64_t>* carried_labels() const { return nullptr; }
    // Standard input, a pipe or a FIFO (raw only): read once, front to back.
    virtual bool pipe() const { return false; }
};

// The reader of one file of format f (not a folder or a list).
std::unique_ptr<data_source::reader> open_reader(const std::string& path, data_format f, const source_options& o);

}  // namespace recalign::io

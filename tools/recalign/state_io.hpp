// Where the CLI's nested stream states (stream_state.hpp) put their checkpoint bytes and read
// them back, without ever holding a checkpoint's bytes beside the state (docs/benchmarks-log.md "ckpt10").
// A state writes itself to a state_sink: a file as the bytes are made, a string, or nowhere (a
// measuring sink only counts, and a part whose bytes are costly to make, a matrix on disk, is
// counted without them). Every part's size is therefore known before its bytes: a part is
// measured, its length written, then the part itself. A state reads itself from a state_source:
// bytes in memory, or a range of an open checkpoint file whose parts are read where they lie.
#pragma once

#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <string_view>

#include "recalign/core/serial.hpp"
#include "recalign/io/files.hpp"
#include "run_state.hpp"

namespace recalign::io {
class row_spill;
}

namespace recalign::cli {

// What a checkpoint write or --resume load holds beyond the state at most: its buffers (a block
// of a matrix on disk or of a checksum, a parse buffer; serial.cpp's 64 KiB gathering buffers).
// validate.cpp counts it in --memory when --checkpoint is given.
constexpr std::uint64_t checkpoint_buffer_bytes = 3 * checkpoint::block_bytes;

class state_sink {
public:
    using out_fn = std::function<void(const char*, std::size_t)>;
    state_sink() = default;  // measuring
    explicit state_sink(out_fn out) : out_(std::move(out)) {}
    bool measuring() const noexcept { return !out_; }
    std::uint64_t count() const noexcept { return count_; }
    void put(const void* p, std::size_t n) {
        count_ += n;
        if (out_ && n) out_(static_cast<const char*>(p), n);
    }
    void u64(std::uint64_t v) { put(&v, 8); }
    void f64(double v) { put(&v, 8); }
    // A library state framed as checkpoint::to_bytes makes it (streamed: core/serial.hpp write_to).
    template <class T>
    void framed(const T& obj) {
        if (measuring()) {
            count_ += checkpoint::framed_size(obj);
            return;
        }
        checkpoint::write_to(obj, [this](const char* p, std::size_t n) { put(p, n); });
    }
    // [u64 length][what `write` puts into the sink it is given], measured first.
    template <class F>
    void part(F&& write) {
        state_sink m;
        write(m);
        u64(m.count());
        if (measuring()) {
            count_ += m.count();
            return;
        }
        const std::uint64_t before = count_;
        write(*this);
        if (count_ - before != m.count())
            throw std::logic_error("a checkpoint part changed size between its measure and its write");
    }
    // The rows of a matrix on disk, copied by blocks of at most checkpoint::block_bytes.
    void spilled(const io::row_spill& f);

private:
    out_fn out_;
    std::uint64_t count_ = 0;
};

// The bytes `s.save_to` makes, in one string reserved to their measured size (merge, MPI).
template <class S>
std::string bytes_of(const S& s) {
    state_sink m;
    s.save_to(m);
    std::string out;
    out.reserve(static_cast<std::size_t>(m.count()));
    state_sink w([&out](const char* p, std::size_t n) { out.append(p, n); });
    s.save_to(w);
    if (w.count() != m.count()) throw std::logic_error("a checkpoint state changed size between its measure and its write");
    return out;
}

class state_source {
public:
    // Bytes in memory; `at`: the file offset of bytes[0] in `name` (for errors).
    state_source(std::string_view bytes, std::uint64_t at, std::string name)
        : view_(bytes), at_(at), size_(bytes.size()), name_(std::move(name)) {}
    // Bytes [offset, offset + size) of the open file `fd` named `name`.
    state_source(int fd, std::uint64_t offset, std::uint64_t size, std::string name)
        : fd_(fd), at_(offset), size_(size), name_(std::move(name)) {}
    bool in_memory() const noexcept { return fd_ < 0; }
    std::uint64_t size() const noexcept { return size_; }
    std::uint64_t at() const noexcept { return at_; }  // the file offset of byte 0
    const std::string& name() const noexcept { return name_; }
    // Bytes [pos, pos + n) (the caller checked that they are within size()).
    void read(std::uint64_t pos, void* dst, std::size_t n) const;
    std::string bytes(std::uint64_t pos, std::uint64_t n) const;
    std::string all() const { return bytes(0, size_); }
    bool starts_with(std::string_view prefix) const;
    state_source sub(std::uint64_t pos, std::uint64_t n) const;
    // The whole source as one library state framed by core/serial.hpp (from a file: checked and
    // parsed by blocks, io/files.hpp load_range); `what` is added to the name in errors.
    template <class T>
    T framed(const std::string& what) const {
        if (in_memory()) return checkpoint::from_bytes<T>(view_, name_ + what);
        return checkpoint::load_range<T>(fd_, at_, size_, name_ + what);
    }

private:
    std::string_view view_;
    int fd_ = -1;
    std::uint64_t at_ = 0, size_ = 0;
    std::string name_;
};

// A cursor over a source: u64s and length-prefixed parts, a truncation named with its offset.
struct source_reader {
    const state_source& src;
    const char* what;  // "verified state", ...
    std::uint64_t pos = 0;
    [[noreturn]] void truncated() const;
    std::uint64_t left() const noexcept { return src.size() - pos; }
    std::uint64_t here() const noexcept { return src.at() + pos; }  // the next byte's file offset
    std::uint64_t u64();
    double f64();
    // [u64 length][bytes]: the bytes as a source (not read), skipped.
    state_source part();
};

// A run checkpoint opened for --resume: the run state's payload checksum checked by blocks and
// its fields read; the accumulator stays in the file, read where it lies (accumulator()).
class checkpoint_file {
public:
    explicit checkpoint_file(const std::string& path);
    ~checkpoint_file();
    checkpoint_file(const checkpoint_file&) = delete;
    checkpoint_file& operator=(const checkpoint_file&) = delete;
    run_state& state() noexcept { return st_; }
    state_source accumulator() const;

private:
    std::string path_;
    int fd_ = -1;
    run_state st_;
    std::uint64_t accumulator_size_ = 0;
};

}  // namespace recalign::cli

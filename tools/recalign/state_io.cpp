#include "state_io.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <optional>
#include <vector>

#include "recalign/core/errors.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::cli {

void state_sink::spilled(const io::row_spill& f) {
    const std::uint64_t row = static_cast<std::uint64_t>(f.cols()) * sizeof(double);
    const std::uint64_t bytes = row * f.rows();
    if (measuring()) {
        count_ += bytes;
        return;
    }
    f.read_blocks(checkpoint::block_bytes,
                  [&](std::size_t, std::size_t n, double* rows) { put(rows, static_cast<std::size_t>(n * row)); });
}

void state_source::read(std::uint64_t pos, void* dst, std::size_t n) const {
    if (pos > size_ || n > size_ - pos) throw std::logic_error("state_source: a read beyond its bytes");
    if (!n) return;
    if (in_memory()) std::memcpy(dst, view_.data() + pos, n);
    else checkpoint::read_at(fd_, at_ + pos, dst, n, name_);
}

std::string state_source::bytes(std::uint64_t pos, std::uint64_t n) const {
    std::string s(static_cast<std::size_t>(n), '\0');
    read(pos, s.data(), s.size());
    return s;
}

bool state_source::starts_with(std::string_view prefix) const {
    if (size_ < prefix.size()) return false;
    return bytes(0, prefix.size()) == prefix;
}

state_source state_source::sub(std::uint64_t pos, std::uint64_t n) const {
    if (pos > size_ || n > size_ - pos) throw std::logic_error("state_source: a part beyond its bytes");
    state_source s = *this;
    if (in_memory()) s.view_ = view_.substr(static_cast<std::size_t>(pos), static_cast<std::size_t>(n));
    s.at_ = at_ + pos;
    s.size_ = n;
    return s;
}

void source_reader::truncated() const { throw file_error(src.name(), here(), std::string(what) + " truncated"); }

std::uint64_t source_reader::u64() {
    if (left() < 8) truncated();
    std::uint64_t v = 0;
    src.read(pos, &v, 8);
    pos += 8;
    return v;
}

double source_reader::f64() {
    const std::uint64_t u = u64();
    double v = 0;
    std::memcpy(&v, &u, 8);
    return v;
}

state_source source_reader::part() {
    const std::uint64_t len = u64();
    if (len > left()) truncated();
    state_source p = src.sub(pos, len);
    pos += len;
    return p;
}

namespace {
// What parse_stream fills: the run state, and the file stream its accumulator is skipped in.
struct skipping {
    std::optional<run_state> state;
    std::istream* in = nullptr;
    std::uint64_t accumulator = 0;
};
}  // namespace

checkpoint_file::checkpoint_file(const std::string& path) : path_(path) {
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw file_error(path, "cannot open checkpoint for reading");
    try {
        struct stat sb {};
        if (::fstat(fd_, &sb) != 0) throw file_error(path, "cannot examine the checkpoint");
        // Header, size against the file's and every byte's checksum (the accumulator's too, read
        // later by parts), by blocks, before any is believed.
        const checkpoint::header h = checkpoint::detail::check_range(fd_, 0, static_cast<std::uint64_t>(sb.st_size),
                                                                     run_state::kind, run_state::kind_label, path);
        std::ifstream in(path, std::ios::binary);
        if (!in) throw file_error(path, "cannot open checkpoint for reading");
        in.seekg(static_cast<std::streamoff>(checkpoint::header_bytes));
        skipping out;
        out.in = &in;
        checkpoint::detail::parse_stream(
            h, in, h.payload_bytes, path, &out,
            [](void* o, checkpoint::input_archive& ar, checkpoint::budget& b) {
                auto& s = *static_cast<skipping*>(o);
                s.state.emplace(run_state::load_payload_with(ar, b, [&](run_state&, std::uint64_t len) {
                    s.accumulator = len;
                    s.in->seekg(static_cast<std::streamoff>(len), std::ios::cur);
                }));
                return checkpoint::detail::state_facts{s.state->dim(), s.state->aux_dim(), s.state->config_hash()};
            },
            checkpoint::header_bytes);
        st_ = std::move(*out.state);
        accumulator_size_ = out.accumulator;
    } catch (...) {
        ::close(fd_);
        throw;
    }
}

checkpoint_file::~checkpoint_file() {
    if (fd_ >= 0) ::close(fd_);
}

state_source checkpoint_file::accumulator() const {
    return state_source(fd_, st_.accumulator_at, accumulator_size_, path_);
}

}  // namespace recalign::cli

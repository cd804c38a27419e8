// Checkpoint files: a fixed 64-byte header validated before anything is allocated, then a
// cereal portable-binary payload. One mechanism serves every accumulator: a class provides
//
//     static constexpr checkpoint::state_kind kind;
//     std::uint64_t dim() const;  std::uint64_t aux_dim() const;  std::uint64_t config_hash() const;
//     template <class A> void save_payload(A&) const;
//     template <class A> static T load_payload(A&, checkpoint::budget&);
//
// and its save(std::ostream&) / load(std::istream&) are save_state / load_state below.
// Files are written atomically (temp file in the same directory, fsync, rename, fsync of
// the directory), so a crash at any moment leaves either the old or the new checkpoint.
#pragma once

#include <cereal/archives/portable_binary.hpp>
#include <cereal/details/helpers.hpp>

#include <cstdint>
#include <fstream>
#include <functional>
#include <istream>
#include <ostream>
#include <sstream>
#include <string>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/xt.hpp"

namespace recalign::checkpoint {

enum class state_kind : std::uint32_t {
    moments = 1,
    frequent_directions = 2,
    nystrom = 3,
    tracker = 4,
    noise = 5,
    cli_run = 6,
};
const char* kind_name(state_kind k);

constexpr std::uint32_t format_version = 1;
constexpr std::size_t header_bytes = 64;
// The largest payload a header may claim (1 TiB); anything above is refused as corrupt.
constexpr std::uint64_t max_payload_bytes = 1ULL << 40;
// The largest dimension a header may claim (BLAS indexes with int).
constexpr std::uint64_t max_dim = 1ULL << 31;

struct header {
    state_kind kind{};
    std::uint32_t version = format_version;
    std::uint64_t dim = 0;
    std::uint64_t aux = 0;
    std::uint64_t config_hash = 0;
    std::uint64_t payload_bytes = 0;
    std::uint32_t payload_crc = 0;
};

// Byte budget of a payload being parsed: every array length read from it is checked
// against what is left, so a crafted payload cannot make us allocate more than the file holds.
struct budget {
    std::uint64_t left;
    void take(std::uint64_t bytes, const char* what);
};

// Writes header + payload.
void write_framed(std::ostream& os, const header& h, const std::string& payload);
// Reads and validates a header, then the payload (in chunks: a truncated stream fails
// before the claimed size is ever allocated), then checks the payload checksum.
// `source` names the stream in error messages.
struct framed {
    header h;
    std::string payload;
};
framed read_framed(std::istream& is, state_kind expected, const std::string& source);
// Reads only the header (for `recalign info`).
header read_header(std::istream& is, const std::string& source);

// Atomic write of a whole file. Any failure (open, write, fsync, rename) throws
// std::system_error naming the path; the previous file at `path` is then untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);

// --- serialization helpers for payloads ---------------------------------------------

template <class Archive, std::size_t N>
void save_tensor(Archive& ar, const xt::xtensor<double, N>& t) {
    for (std::size_t i = 0; i < N; ++i) ar(static_cast<std::uint64_t>(t.shape(i)));
    ar(cereal::binary_data(t.data(), t.size() * sizeof(double)));
}

template <class Archive, std::size_t N>
void load_tensor(Archive& ar, xt::xtensor<double, N>& t, budget& b) {
    std::array<std::size_t, N> shape{};
    std::uint64_t count = 1;
    // Product of the non-zero extents: bounded too, since xtensor computes strides from them
    // even when another extent is 0 (fuzzing found shape {0, 2^63}: signed overflow in
    // xt::compute_strides; tests/fuzz/corpus/checkpoint/regression).
    std::uint64_t nonzero = 1;
    for (std::size_t i = 0; i < N; ++i) {
        std::uint64_t s = 0;
        ar(s);
        b.take(8, "array shape");
        if (s != 0) nonzero = checked_mul(nonzero, s, "checkpoint array shape");
        if (nonzero > max_payload_bytes / 8) throw std::length_error("array shape overflows");
        count *= s;  // <= nonzero
        shape[i] = static_cast<std::size_t>(s);
    }
    b.take(count * 8, "array data");
    t = xt::xtensor<double, N>::from_shape(shape);
    ar(cereal::binary_data(t.data(), t.size() * sizeof(double)));
}

template <class Archive, class V>
void load_scalar(Archive& ar, V& v, budget& b) {
    b.take(sizeof(V), "scalar");
    ar(v);
}

// --- the one save/load mechanism ----------------------------------------------------

template <class T>
void save_state(std::ostream& os, const T& obj) {
    std::ostringstream buf(std::ios::binary);
    {
        cereal::PortableBinaryOutputArchive ar(buf);
        obj.save_payload(ar);
    }
    header h;
    h.kind = T::kind;
    h.dim = obj.dim();
    h.aux = obj.aux_dim();
    h.config_hash = obj.config_hash();
    write_framed(os, h, buf.str());
}

[[noreturn]] void throw_payload_error(const std::string& source, const header& h, const std::string& what);

template <class T>
T load_state(std::istream& is, const std::string& source = "<stream>") {
    framed f = read_framed(is, T::kind, source);
    std::istringstream in(f.payload, std::ios::binary);
    try {
        cereal::PortableBinaryInputArchive ar(in);
        budget b{f.payload.size()};
        b.take(1, "byte-order tag");
        T obj = T::load_payload(ar, b);
        if (obj.dim() != f.h.dim || obj.aux_dim() != f.h.aux)
            throw_payload_error(source, f.h, "payload dimensions disagree with the header");
        if (obj.config_hash() != f.h.config_hash)
            throw_payload_error(source, f.h, "payload configuration disagrees with the header's hash");
        if (b.left != 0) throw_payload_error(source, f.h, std::to_string(b.left) + " unread bytes after the state");
        return obj;
    } catch (const file_error&) {
        throw;
    } catch (const std::exception& e) {
        throw_payload_error(source, f.h, e.what());
    }
}

// File convenience: atomic save, load naming the file in every error.
template <class T>
void save_file(const std::string& path, const T& obj) {
    std::ostringstream os(std::ios::binary);
    obj.save(os);
    write_file_atomic(path, os.str());
}

template <class T>
T load_file(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    if (!is) throw file_error(path, 0, "cannot open checkpoint for reading");
    return load_state<T>(is, path);
}

}  // namespace recalign::checkpoint

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
#include <stdexcept>
#include <streambuf>
#include <string>
#include <string_view>

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
    class_moments = 7,
    patch_blocks = 8,
    restricted_moments = 9,
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
// Fills the first header_bytes of `bytes` (reserved by the caller) from h and the payload
// that follows them: payload size and CRC-32 are computed here.
void seal_framed(std::string& bytes, header h);
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
// Validates the header at the start of `bytes` and the payload after it (size, kind, CRC)
// without copying; returns the header. The payload is bytes[header_bytes, header_bytes +
// payload_bytes), and nothing may follow it.
header check_framed(std::string_view bytes, state_kind expected, const std::string& source);

namespace detail {
// Counts what is written and keeps nothing: the exact payload size before serializing it.
class counting_buf : public std::streambuf {
public:
    std::uint64_t count = 0;

protected:
    std::streamsize xsputn(const char*, std::streamsize n) override {
        count += static_cast<std::uint64_t>(n);
        return n;
    }
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) ++count;
        return traits_type::not_eof(c);
    }
};
// Appends to a string (whose capacity the caller reserved: no reallocation, no copy).
class appending_buf : public std::streambuf {
public:
    explicit appending_buf(std::string& s) : s_(s) {}

protected:
    std::streamsize xsputn(const char* p, std::streamsize n) override {
        s_.append(p, static_cast<std::size_t>(n));
        return n;
    }
    int_type overflow(int_type c) override {
        if (!traits_type::eq_int_type(c, traits_type::eof())) s_.push_back(traits_type::to_char_type(c));
        return traits_type::not_eof(c);
    }

private:
    std::string& s_;
};
// Reads bytes held elsewhere, without copying them.
class view_buf : public std::streambuf {
public:
    view_buf(const char* p, std::size_t n) {
        char* b = const_cast<char*>(p);  // get area only: never written through
        setg(b, b, b + n);
    }
};
}  // namespace detail

// Atomic write of a whole file. Any failure (open, write, fsync, rename) throws
// std::system_error naming the path; the previous file at `path` is then untouched.
void write_file_atomic(const std::string& path, const std::string& bytes);
// Removes the temporary files a killed write_file_atomic(path, ...) left beside `path`
// (named path + ".tmp." + 6 characters; never read again) and returns how many. Call it
// before the first write of a run, never while another process may be writing `path`.
std::size_t remove_stale_temporaries(const std::string& path);

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
//
// to_bytes / from_bytes are the mechanism; the stream and file forms are thin wrappers.
// The payload is serialized twice: once into a counter, once into a string reserved to the
// exact framed size. Growing a buffer instead cost more than the serialization itself
// (reallocations, copies and fresh-page faults: 21 ms against 1 ms for a 5 MB state).

template <class T>
std::string to_bytes(const T& obj) {
    detail::counting_buf counter;
    {
        std::ostream os(&counter);
        cereal::PortableBinaryOutputArchive ar(os);
        obj.save_payload(ar);
    }
    std::string bytes;
    bytes.reserve(header_bytes + static_cast<std::size_t>(counter.count));
    bytes.resize(header_bytes);
    {
        detail::appending_buf app(bytes);
        std::ostream os(&app);
        cereal::PortableBinaryOutputArchive ar(os);
        obj.save_payload(ar);
        if (!os) throw std::runtime_error("serializing the checkpoint payload failed");
    }
    if (bytes.size() != header_bytes + counter.count)
        throw std::logic_error("checkpoint payload changed size between its two serializations");
    header h;
    h.kind = T::kind;
    h.dim = obj.dim();
    h.aux = obj.aux_dim();
    h.config_hash = obj.config_hash();
    seal_framed(bytes, h);
    return bytes;
}

[[noreturn]] void throw_payload_error(const std::string& source, const header& h, const std::string& what);

// Parses a validated payload (header checked, CRC matched) held in memory.
template <class T>
T parse_payload(const header& h, const char* payload, std::size_t size, const std::string& source) {
    detail::view_buf view(payload, size);
    std::istream in(&view);
    try {
        cereal::PortableBinaryInputArchive ar(in);
        budget b{size};
        b.take(1, "byte-order tag");
        T obj = T::load_payload(ar, b);
        if (obj.dim() != h.dim || obj.aux_dim() != h.aux)
            throw_payload_error(source, h, "payload dimensions disagree with the header");
        if (obj.config_hash() != h.config_hash)
            throw_payload_error(source, h, "payload configuration disagrees with the header's hash");
        if (b.left != 0) throw_payload_error(source, h, std::to_string(b.left) + " unread bytes after the state");
        return obj;
    } catch (const file_error&) {
        throw;
    } catch (const std::exception& e) {
        throw_payload_error(source, h, e.what());
    }
}

template <class T>
T from_bytes(std::string_view bytes, const std::string& source = "<bytes>") {
    const header h = check_framed(bytes, T::kind, source);
    return parse_payload<T>(h, bytes.data() + header_bytes, static_cast<std::size_t>(h.payload_bytes), source);
}

template <class T>
void save_state(std::ostream& os, const T& obj) {
    const std::string bytes = to_bytes(obj);
    os.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    if (!os) throw std::runtime_error("writing the checkpoint stream failed");
}

template <class T>
T load_state(std::istream& is, const std::string& source = "<stream>") {
    const framed f = read_framed(is, T::kind, source);
    return parse_payload<T>(f.h, f.payload.data(), f.payload.size(), source);
}

// File convenience: atomic save, load naming the file in every error.
template <class T>
void save_file(const std::string& path, const T& obj) {
    write_file_atomic(path, to_bytes(obj));
}

template <class T>
T load_file(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    if (!is) throw file_error(path, 0, "cannot open checkpoint for reading");
    return load_state<T>(is, path);
}

}  // namespace recalign::checkpoint

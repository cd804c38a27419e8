#include "recalign/core/serial.hpp"

#include <cereal/archives/portable_binary.hpp>

#include <algorithm>
#include <cstring>
#include <streambuf>
#include <vector>

#include "recalign/core/errors.hpp"
#include "recalign/core/hash.hpp"

namespace recalign::checkpoint {

namespace {
constexpr char magic[8] = {'R', 'E', 'C', 'A', 'L', 'I', 'G', 'N'};
constexpr std::uint32_t endian_tag = 0x01020304u;
constexpr std::uint32_t scalar_f64 = 8;  // IEEE-754 binary64

template <class T>
void put(unsigned char* p, T v) { std::memcpy(p, &v, sizeof v); }
template <class T>
T get(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}
}  // namespace

std::string kind_name(state_kind k) {
    switch (k) {
        case state_kind::moments: return "moment_accumulator";
        case state_kind::frequent_directions: return "frequent_directions";
        case state_kind::nystrom: return "nystrom_sketch";
        case state_kind::tracker: return "alignment_tracker";
        case state_kind::noise: return "noise_accumulator";
        case state_kind::class_moments: return "class_moments";
        case state_kind::patch_blocks: return "patch_blocks";
        case state_kind::restricted_moments: return "restricted_moments";
        case state_kind::monte_carlo_sketch: return "monte_carlo_sketch";
    }
    // Another program's state (the CLI's run state) or a newer library's: the header
    // stores any u32, so say which.
    return "state of kind " + std::to_string(static_cast<std::uint32_t>(k));
}

void budget::take(std::uint64_t bytes, const char* what) {
    if (bytes > left) {
        throw std::length_error(std::string(what) + " needs " + std::to_string(bytes) + " bytes but only " +
                                std::to_string(left) + " remain in the payload");
    }
    left -= bytes;
}

namespace {
void fill_header_crc(unsigned char* b, const header& h, std::uint64_t payload_bytes, std::uint32_t payload_crc) {
    std::memset(b, 0, header_bytes);
    std::memcpy(b, magic, 8);
    put<std::uint32_t>(b + 8, format_version);
    put<std::uint32_t>(b + 12, endian_tag);
    put<std::uint32_t>(b + 16, static_cast<std::uint32_t>(h.kind));
    put<std::uint32_t>(b + 20, scalar_f64);
    put<std::uint64_t>(b + 24, h.dim);
    put<std::uint64_t>(b + 32, h.aux);
    put<std::uint64_t>(b + 40, h.config_hash);
    put<std::uint64_t>(b + 48, payload_bytes);
    put<std::uint32_t>(b + 56, payload_crc);
    put<std::uint32_t>(b + 60, crc32(b, 60));
}

void fill_header(unsigned char* b, const header& h, const char* payload, std::uint64_t payload_bytes) {
    fill_header_crc(b, h, payload_bytes, crc32(payload, static_cast<std::size_t>(payload_bytes)));
}

// Validates the 64 header bytes `b` (of which `got` arrived).
header parse_header(const unsigned char* b, std::uint64_t got, const std::string& source, std::uint64_t at = 0) {
    if (got < header_bytes) {
        throw file_error(source, at + got, "truncated checkpoint: the header needs 64 bytes, the file has " +
                                          std::to_string(got));
    }
    if (std::memcmp(b, magic, 8) != 0) throw file_error(source, at + 0, "not a recalign checkpoint (bad magic)");
    if (get<std::uint32_t>(b + 60) != crc32(b, 60)) throw file_error(source, at + 60, "header checksum mismatch (corrupt header)");
    const auto version = get<std::uint32_t>(b + 8);
    if (version != format_version) {
        throw file_error(source, at + 8, "checkpoint format version " + std::to_string(version) +
                                        " is not supported (this build reads version " +
                                        std::to_string(format_version) + ")");
    }
    if (get<std::uint32_t>(b + 12) != endian_tag) {
        throw file_error(source, at + 12, "checkpoint was written on a machine of the other byte order");
    }
    if (get<std::uint32_t>(b + 20) != scalar_f64) throw file_error(source, at + 20, "unsupported scalar type");
    header h;
    h.kind = static_cast<state_kind>(get<std::uint32_t>(b + 16));
    h.version = version;
    h.dim = get<std::uint64_t>(b + 24);
    h.aux = get<std::uint64_t>(b + 32);
    h.config_hash = get<std::uint64_t>(b + 40);
    h.payload_bytes = get<std::uint64_t>(b + 48);
    h.payload_crc = get<std::uint32_t>(b + 56);
    if (h.dim > max_dim) throw file_error(source, at + 24, "absurd dimension " + std::to_string(h.dim));
    if (h.aux > max_dim) throw file_error(source, at + 32, "absurd auxiliary dimension " + std::to_string(h.aux));
    if (h.payload_bytes > max_payload_bytes) {
        throw file_error(source, at + 48, "absurd payload size " + std::to_string(h.payload_bytes) + " bytes");
    }
    return h;
}

void check_kind(const header& h, state_kind expected, const std::string& expected_name, const std::string& source,
                std::uint64_t at = 0) {
    if (h.kind != expected)
        throw file_error(source, at + 16, "checkpoint holds a " + kind_name(h.kind) + ", expected a " + expected_name);
}

void check_payload_crc(const header& h, const char* payload, const std::string& source) {
    if (crc32(payload, static_cast<std::size_t>(h.payload_bytes)) != h.payload_crc) {
        throw file_error(source, header_bytes, "payload checksum mismatch (corrupt checkpoint)");
    }
}
}  // namespace

void write_framed(std::ostream& os, const header& h, const std::string& payload) {
    unsigned char b[header_bytes];
    fill_header(b, h, payload.data(), payload.size());
    os.write(reinterpret_cast<const char*>(b), header_bytes);
    os.write(payload.data(), static_cast<std::streamsize>(payload.size()));
    if (!os) throw std::runtime_error("writing the checkpoint stream failed");
}

header read_header(std::istream& is, const std::string& source) {
    unsigned char b[header_bytes];
    is.read(reinterpret_cast<char*>(b), header_bytes);
    return parse_header(b, static_cast<std::uint64_t>(is.gcount()), source);
}

header check_framed(std::string_view bytes, state_kind expected, const std::string& expected_name,
                    const std::string& source) {
    const auto* b = reinterpret_cast<const unsigned char*>(bytes.data());
    const header h = parse_header(b, std::min<std::uint64_t>(bytes.size(), header_bytes), source);
    check_kind(h, expected, expected_name, source);
    const std::uint64_t have = bytes.size() - header_bytes;
    if (have < h.payload_bytes) {
        throw file_error(source, bytes.size(),
                         "truncated checkpoint: payload of " + std::to_string(h.payload_bytes) +
                             " bytes announced, the data ends after " + std::to_string(have));
    }
    if (have > h.payload_bytes) {
        throw file_error(source, header_bytes + h.payload_bytes,
                         std::to_string(have - h.payload_bytes) + " stray bytes after the checkpoint's payload");
    }
    check_payload_crc(h, bytes.data() + header_bytes, source);
    return h;
}

header check_header(const void* bytes, std::uint64_t got, state_kind expected, const std::string& expected_name,
                    const std::string& source, std::uint64_t at) {
    const header h = parse_header(static_cast<const unsigned char*>(bytes), got, source, at);
    check_kind(h, expected, expected_name, source, at);
    return h;
}

framed read_framed(std::istream& is, state_kind expected, const std::string& expected_name, const std::string& source) {
    framed f;
    f.h = read_header(is, source);
    check_kind(f.h, expected, expected_name, source);
    // Read in bounded chunks: memory grows only with bytes that really arrive. When the
    // stream can tell how much it holds, reserve that much (never more than claimed) once,
    // instead of growing the buffer chunk by chunk.
    const std::istream::pos_type here = is.tellg();
    if (here != std::istream::pos_type(-1)) {
        is.seekg(0, std::ios::end);
        const std::istream::pos_type end = is.tellg();
        is.clear();  // the header was read, so the stream was good before probing its end
        is.seekg(here);
        if (end != std::istream::pos_type(-1) && end >= here)
            f.payload.reserve(static_cast<std::size_t>(
                std::min<std::uint64_t>(f.h.payload_bytes, static_cast<std::uint64_t>(end - here))));
    }
    constexpr std::size_t chunk = 1 << 20;
    std::uint64_t have = 0;
    while (have < f.h.payload_bytes) {
        const std::size_t want = static_cast<std::size_t>(std::min<std::uint64_t>(chunk, f.h.payload_bytes - have));
        f.payload.resize(static_cast<std::size_t>(have) + want);
        is.read(&f.payload[static_cast<std::size_t>(have)], static_cast<std::streamsize>(want));
        have += static_cast<std::uint64_t>(is.gcount());
        if (static_cast<std::size_t>(is.gcount()) < want) {
            throw file_error(source, header_bytes + have,
                             "truncated checkpoint: payload of " + std::to_string(f.h.payload_bytes) +
                                 " bytes announced, file ends after " + std::to_string(have));
        }
    }
    check_payload_crc(f.h, f.payload.data(), source);
    return f;
}

namespace {
[[noreturn]] void throw_payload_error(const std::string& source, std::uint64_t at, const std::string& what) {
    throw file_error(source, at, "invalid checkpoint payload: " + what);
}

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
// Hands what is written to `out` in pieces: small writes (the scalars) gathered in a buffer,
// large ones (the arrays) passed through without a copy.
class chunk_buf : public std::streambuf {
public:
    explicit chunk_buf(const detail::sink_fn& out) : out_(out), buf_(1 << 16) { reset(); }
    void flush() {
        const std::size_t n = static_cast<std::size_t>(pptr() - pbase());
        if (n) out_(pbase(), n);
        reset();
    }

protected:
    int_type overflow(int_type c) override {
        flush();
        if (traits_type::eq_int_type(c, traits_type::eof())) return traits_type::not_eof(c);
        *pptr() = traits_type::to_char_type(c);
        pbump(1);
        return c;
    }
    std::streamsize xsputn(const char* p, std::streamsize n) override {
        if (n <= 0) return 0;  // an empty matrix's data() may be null: memcpy must not see it
        if (n >= static_cast<std::streamsize>(buf_.size())) {
            flush();
            out_(p, static_cast<std::size_t>(n));
            return n;
        }
        if (n > epptr() - pptr()) flush();
        std::memcpy(pptr(), p, static_cast<std::size_t>(n));
        pbump(static_cast<int>(n));
        return n;
    }
    int sync() override {
        flush();
        return 0;
    }

private:
    void reset() { setp(buf_.data(), buf_.data() + buf_.size()); }
    const detail::sink_fn& out_;
    std::vector<char> buf_;
};
// Reads bytes held elsewhere, without copying them.
class view_buf : public std::streambuf {
public:
    view_buf(const char* p, std::size_t n) {
        char* b = const_cast<char*>(p);  // get area only: never written through
        setg(b, b, b + n);
    }
};
}  // namespace

namespace detail {

// The payload is serialized twice: once into a counter, once into a string reserved to the
// exact framed size. Growing a buffer instead cost more than the serialization itself
// (reallocations, copies and fresh-page faults: 21 ms against 1 ms for a 5 MB state).
std::string frame(const void* state, save_fn save, header h) {
    counting_buf counter;
    {
        std::ostream os(&counter);
        output_archive ar(os);
        save(state, ar);
    }
    std::string bytes;
    bytes.reserve(header_bytes + static_cast<std::size_t>(counter.count));
    bytes.resize(header_bytes);
    {
        appending_buf app(bytes);
        std::ostream os(&app);
        output_archive ar(os);
        save(state, ar);
        if (!os) throw std::runtime_error("serializing the checkpoint payload failed");
    }
    if (bytes.size() != header_bytes + counter.count)
        throw std::logic_error("checkpoint payload changed size between its two serializations");
    fill_header(reinterpret_cast<unsigned char*>(&bytes[0]), h, bytes.data() + header_bytes,
                bytes.size() - header_bytes);
    return bytes;
}

void frame_to(const void* state, save_fn save, header h, const sink_fn& sink) {
    std::uint64_t count = 0, written = 0;
    std::uint32_t crc = 0;
    const sink_fn measure = [&](const char* p, std::size_t n) {
        count += n;
        crc = crc32(p, n, crc);
    };
    const sink_fn forward = [&](const char* p, std::size_t n) {
        written += n;
        sink(p, n);
    };
    for (const sink_fn* out : {&measure, &forward}) {
        if (out == &forward) {
            unsigned char head[header_bytes];
            fill_header_crc(head, h, count, crc);
            sink(reinterpret_cast<const char*>(head), header_bytes);
        }
        chunk_buf buf(*out);
        {
            std::ostream os(&buf);
            output_archive ar(os);
            save(state, ar);
            if (!os) throw std::runtime_error("serializing the checkpoint payload failed");
        }
        buf.flush();
    }
    if (written != count) throw std::logic_error("checkpoint payload changed size between its two serializations");
}

std::uint64_t frame_size(const void* state, save_fn save) {
    counting_buf counter;
    {
        std::ostream os(&counter);
        output_archive ar(os);
        save(state, ar);
    }
    return header_bytes + counter.count;
}

void frame_once(const void* state, save_fn save, header h, const sink_fn& sink,
                const std::function<void(const char* header)>& patch) {
    std::uint64_t count = 0;
    std::uint32_t crc = 0;
    const sink_fn forward = [&](const char* p, std::size_t n) {
        count += n;
        crc = crc32(p, n, crc);
        sink(p, n);
    };
    unsigned char head[header_bytes] = {};
    sink(reinterpret_cast<const char*>(head), header_bytes);
    chunk_buf buf(forward);
    {
        std::ostream os(&buf);
        output_archive ar(os);
        save(state, ar);
        if (!os) throw std::runtime_error("serializing the checkpoint payload failed");
    }
    buf.flush();
    fill_header_crc(head, h, count, crc);
    patch(reinterpret_cast<const char*>(head));
}

void parse(const header& h, const char* payload, std::size_t size, const std::string& source, void* out,
           load_fn load) {
    view_buf view(payload, size);
    std::istream in(&view);
    parse_stream(h, in, size, source, out, load, header_bytes);
}

void parse_stream(const header& h, std::istream& in, std::uint64_t size, const std::string& source, void* out,
                  load_fn load, std::uint64_t at) {
    try {
        input_archive ar(in);
        budget b{size, size};
        b.take(1, "byte-order tag");
        const state_facts got = load(out, ar, b);
        if (got.dim != h.dim || got.aux != h.aux)
            throw_payload_error(source, at, "payload dimensions disagree with the header");
        if (got.config_hash != h.config_hash)
            throw_payload_error(source, at, "payload configuration disagrees with the header's hash");
        if (b.left != 0) throw_payload_error(source, at, std::to_string(b.left) + " unread bytes after the state");
    } catch (const file_error&) {
        throw;
    } catch (const std::exception& e) {
        throw_payload_error(source, at, e.what());
    }
}

}  // namespace detail

}  // namespace recalign::checkpoint

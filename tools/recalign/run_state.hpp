// The CLI's checkpoint: one accumulator (saved in its own framed format, nested as a
// string) plus what a resumed run must check and where it must continue: the run's
// configuration, and for each input segment the fingerprints of its files, its row range
// and how many of its rows are already in the state. A run has one segment; `merge`
// concatenates segments (and refuses overlapping rows of the same file).
#pragma once

#include <cereal/archives/portable_binary.hpp>

#include <algorithm>
#include <cstdint>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include "recalign/core/hash.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/source.hpp"

namespace recalign::cli {

// Everything that decides the accumulated numbers (two runs may be merged only if equal).
struct run_config {
    std::string method = "exact";  // exact | fd | nystrom
    std::uint64_t dim = 0;
    std::uint64_t classes = 0;     // 0: no labels
    double scale = 1.0;
    std::uint64_t rank = 0, passes = 1, seed = 0;  // sketches only
    std::uint8_t center = 0;       // sketches only (centering), 0 for exact (both available)
    // --test-matrix (nystrom): signs (dense; Gaussian where D < 64) or sparse. Saved only when
    // sparse (the trailing section's version 4), so every other checkpoint keeps its bytes and
    // loads in builds before it; hashed and compared likewise.
    std::string test_matrix = "signs";
    // --precision f32-kernels: how a batch is computed, not what is accumulated (as in the
    // library, states with and without it merge), so neither saved, hashed nor compared.
    bool float32_kernels = false;
    // --tolerance (nystrom): when the sketch passes may stop before --passes, not what a pass
    // accumulates: neither saved, hashed nor compared (a resume takes this run's).
    double tolerance = 0.0;
    // --memory in bytes (0: this machine's physical memory): what the run may use, not what it
    // computes; neither saved, hashed nor compared either.
    std::uint64_t memory = 0;
    // --checkpoint: what a checkpoint write or --resume load holds beyond the state (its buffers,
    // state_io.hpp checkpoint_buffer_bytes) is counted in --memory; neither saved, hashed nor compared.
    bool checkpoints = false;
    // A fresh multi-pass Nyström sketch is block Krylov over all passes with p = max(K, 10) (align,
    // spectrum, project: their result is the top-K spectrum) or the historic K + 10 columns of
    // subspace iteration (denoise, tradeoff: their verification passes make the printed numbers
    // exact, and the 224x224 demo's memory is tuned to that sketch). A checkpoint of either
    // loads (its state says which): neither saved, hashed nor compared.
    bool krylov = false;
    // --passes was not given: `passes` is the command's default (run_needs::default_passes), which
    // a resume's refusal names (a checkpoint from before denoise's default of 2 holds 1). Neither
    // saved, hashed nor compared.
    bool default_passes = false;

    std::uint64_t hash() const;
    // Empty string when equal, else "<option> is X in <mine> but Y in <theirs>" (a resume compares
    // the checkpoint with this run; a merge names its two files).
    std::string difference(const run_config& o, const std::string& mine = "the checkpoint",
                           const std::string& theirs = "this run") const;
};

struct input_segment {
    io::file_fingerprint images, labels;
    std::string format;          // resolved images format
    std::uint64_t first_row = 0; // --skip
    std::uint64_t rows_total = 0;
    std::uint64_t rows_done = 0; // rows of the range already in the state
    std::uint64_t batch = 0;     // minibatch size (resume must keep the batch boundaries)
    std::uint64_t pass = 0;      // multi-pass sketches: the pass rows_done belongs to
    // Image folders, lists, CIFAR and several files (saved after the accumulator, so that
    // checkpoints written before these fields still load): what the fingerprint covers, file
    // by file (a resume names what changed), the decoding options that make the rows (a
    // resume must keep them), the class names and the files --skip-unreadable left out.
    std::vector<io::file_entry> files;
    std::string decoding;        // e.g. "channels=3 resize=64 crop=64,64 layout=hwc"
    std::vector<std::string> class_names;
    std::vector<io::skipped_file> skipped;
};

class run_state {
public:
    // The CLI's own kind, a value the library does not list (6: run checkpoints written
    // before the library stopped listing it still load).
    static constexpr checkpoint::state_kind kind{6};
    static constexpr const char* kind_label = "cli_run";

    std::string command;     // the command that wrote it (informational)
    run_config config;
    std::vector<input_segment> segments;
    std::string accumulator; // the accumulator's own framed checkpoint bytes
    std::uint64_t accumulator_at = 0;  // not saved: its first byte's offset in the file it was loaded from
    // Not saved: when set, save_payload writes the accumulator's bytes through this (their count,
    // accumulator_bytes, announced first) instead of `accumulator`: a checkpoint streamed from
    // the state as it is written (driver.cpp save_checkpoint, state_io.hpp).
    std::function<void(const std::function<void(const char*, std::size_t)>&)> write_accumulator;
    std::uint64_t accumulator_bytes = 0;
    std::uint64_t n = 0;     // samples in the accumulator (for `info`)
    // Passes the state reads in all (stream_state::passes(): the sketch's and, with --verify,
    // the verification passes); 0 in checkpoints written before it was recorded. --passes alone
    // (config.passes) does not count the verification passes.
    std::uint64_t state_passes = 0;
    // The passes the state read when an adaptive stop ended them (stream_state::passes_read(),
    // below state_passes: the passes after it read nothing, and the run is complete); 0 without
    // a stop, and in checkpoints written before it was recorded.
    std::uint64_t passes_read = 0;

    std::uint64_t dim() const noexcept { return config.dim; }
    std::uint64_t aux_dim() const noexcept { return config.classes; }
    std::uint64_t config_hash() const { return config.hash(); }
    bool complete() const { return complete(std::max(config.passes, state_passes)); }  // every pass done
    // Every segment fully read in its first `passes` passes (a segment in a later pass read them all).
    bool complete(std::uint64_t passes) const;

    void save(std::ostream& os) const { checkpoint::save_state(os, *this); }
    static run_state load(std::istream& is, const std::string& source) {
        return checkpoint::load_state<run_state>(is, source);
    }

    template <class Archive>
    void save_payload(Archive& ar) const {
        save_string(ar, command);
        save_string(ar, config.method);
        ar(config.dim, config.classes, config.scale, config.rank, config.passes, config.seed, config.center, n);
        ar(static_cast<std::uint64_t>(segments.size()));
        for (const input_segment& s : segments) {
            save_fingerprint(ar, s.images);
            save_fingerprint(ar, s.labels);
            save_string(ar, s.format);
            ar(s.first_row, s.rows_total, s.rows_done, s.batch, s.pass);
        }
        if (write_accumulator) {
            ar(accumulator_bytes);
            std::uint64_t written = 0;
            write_accumulator([&](const char* p, std::size_t n) {
                ar(cereal::binary_data(static_cast<const char*>(p), n));
                written += n;
            });
            if (written != accumulator_bytes) throw std::logic_error("the checkpoint's state changed size as it was written");
        } else {
            save_string(ar, accumulator);
        }
        // Version of the trailing section (2: state_passes after it, 3: passes_read, 4: the test
        // matrix, written only where it is not the default).
        ar(std::uint64_t{config.test_matrix != "signs" ? 4u : 3u});
        for (const input_segment& s : segments) {
            ar(static_cast<std::uint64_t>(s.files.size()));
            for (const io::file_entry& f : s.files) {
                save_string(ar, f.path);
                ar(f.size, f.mtime_ns);
            }
            save_string(ar, s.decoding);
            ar(static_cast<std::uint64_t>(s.class_names.size()));
            for (const std::string& c : s.class_names) save_string(ar, c);
            ar(static_cast<std::uint64_t>(s.skipped.size()));
            for (const io::skipped_file& f : s.skipped) {
                ar(f.index);
                save_string(ar, f.path);
                save_string(ar, f.reason);
            }
        }
        ar(state_passes, passes_read);
        if (config.test_matrix != "signs") save_string(ar, config.test_matrix);
    }

    template <class Archive>
    static run_state load_payload(Archive& ar, checkpoint::budget& b) {
        return load_payload_with(ar, b, [&](run_state& r, std::uint64_t len) {
            r.accumulator.resize(static_cast<std::size_t>(len));
            ar(cereal::binary_data(r.accumulator.data(), r.accumulator.size()));
        });
    }
    // The same, the accumulator's `len` bytes (charged to the budget) handed to
    // skip(run_state&, len), which reads them or moves past them (state_io.hpp checkpoint_file).
    template <class Archive, class Skip>
    static run_state load_payload_with(Archive& ar, checkpoint::budget& b, Skip&& skip) {
        run_state r;
        load_string(ar, r.command, b);
        load_string(ar, r.config.method, b);
        checkpoint::load_scalar(ar, r.config.dim, b);
        checkpoint::load_scalar(ar, r.config.classes, b);
        checkpoint::load_scalar(ar, r.config.scale, b);
        checkpoint::load_scalar(ar, r.config.rank, b);
        checkpoint::load_scalar(ar, r.config.passes, b);
        checkpoint::load_scalar(ar, r.config.seed, b);
        checkpoint::load_scalar(ar, r.config.center, b);
        checkpoint::load_scalar(ar, r.n, b);
        std::uint64_t count = 0;
        checkpoint::load_scalar(ar, count, b);
        // Every segment takes at least 8 uint64 + 4 string lengths: refuse counts the payload cannot hold.
        if (count > b.left / 96) throw std::length_error("segment count " + std::to_string(count) + " exceeds the payload");
        r.segments.resize(static_cast<std::size_t>(count));
        for (input_segment& s : r.segments) {
            load_fingerprint(ar, s.images, b);
            load_fingerprint(ar, s.labels, b);
            load_string(ar, s.format, b);
            checkpoint::load_scalar(ar, s.first_row, b);
            checkpoint::load_scalar(ar, s.rows_total, b);
            checkpoint::load_scalar(ar, s.rows_done, b);
            checkpoint::load_scalar(ar, s.batch, b);
            checkpoint::load_scalar(ar, s.pass, b);
            if (s.rows_done > s.rows_total) throw std::length_error("segment has more rows done than it holds");
        }
        r.accumulator_at = checkpoint::header_bytes + (b.size - b.left) + 8;  // after its length
        std::uint64_t len = 0;
        checkpoint::load_scalar(ar, len, b);
        b.take(len, "string");
        skip(r, len);
        if (b.left == 0) return r;  // written before the trailing section
        std::uint64_t version = 0;
        checkpoint::load_scalar(ar, version, b);
        if (version < 1 || version > 4)
            throw std::length_error("unknown trailing section version " + std::to_string(version));
        for (input_segment& s : r.segments) {
            std::uint64_t n = 0;
            checkpoint::load_scalar(ar, n, b);
            if (n > b.left / 24) throw std::length_error("file count exceeds the payload");
            s.files.resize(static_cast<std::size_t>(n));
            for (io::file_entry& f : s.files) {
                load_string(ar, f.path, b);
                checkpoint::load_scalar(ar, f.size, b);
                checkpoint::load_scalar(ar, f.mtime_ns, b);
            }
            load_string(ar, s.decoding, b);
            checkpoint::load_scalar(ar, n, b);
            if (n > b.left / 8) throw std::length_error("class name count exceeds the payload");
            s.class_names.resize(static_cast<std::size_t>(n));
            for (std::string& c : s.class_names) load_string(ar, c, b);
            checkpoint::load_scalar(ar, n, b);
            if (n > b.left / 24) throw std::length_error("skipped file count exceeds the payload");
            s.skipped.resize(static_cast<std::size_t>(n));
            for (io::skipped_file& f : s.skipped) {
                checkpoint::load_scalar(ar, f.index, b);
                load_string(ar, f.path, b);
                load_string(ar, f.reason, b);
            }
        }
        if (version >= 2) checkpoint::load_scalar(ar, r.state_passes, b);
        if (version >= 3) checkpoint::load_scalar(ar, r.passes_read, b);
        if (version >= 4) {
            load_string(ar, r.config.test_matrix, b);
            if (r.config.test_matrix != "sparse") throw std::length_error("unknown test matrix '" + r.config.test_matrix + "'");
        }
        return r;
    }

private:
    template <class Archive>
    static void save_string(Archive& ar, const std::string& s) {
        ar(static_cast<std::uint64_t>(s.size()));
        ar(cereal::binary_data(s.data(), s.size()));
    }
    template <class Archive>
    static void load_string(Archive& ar, std::string& s, checkpoint::budget& b) {
        std::uint64_t len = 0;
        checkpoint::load_scalar(ar, len, b);
        b.take(len, "string");
        s.resize(static_cast<std::size_t>(len));
        ar(cereal::binary_data(s.data(), s.size()));
    }
    template <class Archive>
    static void save_fingerprint(Archive& ar, const io::file_fingerprint& f) {
        save_string(ar, f.path);
        ar(f.size, f.mtime_ns, f.content_hash);
    }
    template <class Archive>
    static void load_fingerprint(Archive& ar, io::file_fingerprint& f, checkpoint::budget& b) {
        load_string(ar, f.path, b);
        checkpoint::load_scalar(ar, f.size, b);
        checkpoint::load_scalar(ar, f.mtime_ns, b);
        checkpoint::load_scalar(ar, f.content_hash, b);
    }
};

run_state load_run_state(const std::string& path);

// A checkpoint's kind as `info` and `merge` name it: the library's name, or the run state's.
inline std::string checkpoint_kind_name(checkpoint::state_kind k) {
    return k == run_state::kind ? run_state::kind_label : checkpoint::kind_name(k);
}

}  // namespace recalign::cli

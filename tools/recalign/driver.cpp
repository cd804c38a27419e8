#include "driver.hpp"

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <optional>
#include <csignal>
#include <cstdio>
#include <system_error>
#include <thread>

#include "input_files.hpp"
#include "jitter_state.hpp"
#include "memory_trace.hpp"
#include "options.hpp"
#include "paths.hpp"
#include "progress.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/files.hpp"
#include "recalign/io/lock.hpp"

namespace recalign::cli {

namespace {

// A signal handler can only set a flag of this type.
volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_signal(int) { g_interrupted = 1; }

// SIGINT/SIGTERM set the flag while a checkpointed run streams (restored on scope exit).
class signal_scope {
public:
    explicit signal_scope(bool on) : on_(on) {
        if (!on_) return;
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
    }
    signal_scope(const signal_scope&) = delete;
    signal_scope& operator=(const signal_scope&) = delete;
    ~signal_scope() {
        if (!on_) return;
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
    }

private:
    bool on_;
};

std::string row_range(const input_segment& s) {
    return "rows " + std::to_string(s.first_row) + ".." + std::to_string(s.first_row + s.rows_total);
}

// A merge of shards (row ranges of one input, `merge`) continues as one run when every shard
// finished the same pass and the state needs more (Nyström's next power iteration, a
// verification pass): the shards must cover this run's range exactly, and the run then starts
// the next pass over all of it. Anything else is analysed with --from.
void check_merge_resumable(const std::string& path, const run_state& st, const run_config& cfg,
                           const input_segment& now, std::uint64_t passes) {
    auto refuse = [&](const std::string& why) {
        throw std::invalid_argument("--resume: checkpoint " + path + " is a merge of " +
                                    std::to_string(st.segments.size()) + " runs, " + why);
    };
    std::vector<input_segment> s = st.segments;
    const std::uint64_t pass = s[0].pass;
    for (const input_segment& x : s)
        if (x.rows_done != x.rows_total || x.pass != pass)
            refuse("not all finished in the same pass (finish each with --resume first, then merge again)");
    if (pass + 1 >= passes)
        refuse("complete: analyse it with --from " + path);
    if (const std::string d = st.config.difference(cfg); !d.empty()) refuse(d);
    std::sort(s.begin(), s.end(), [](const input_segment& a, const input_segment& b) { return a.first_row < b.first_row; });
    std::uint64_t row = now.first_row;
    for (const input_segment& x : s) {
        if (!now.files.empty() || !x.files.empty() || !(x.images == now.images) || !(x.labels == now.labels) ||
            x.format != now.format || x.decoding != now.decoding)
            refuse("and its next pass reads the shards as row ranges of one input: each shard must be --skip/--limit "
                   "of this run's --images (and --labels), with the same format (shard " + x.images.path + " rows " +
                   std::to_string(x.first_row) + ".." + std::to_string(x.first_row + x.rows_total) + ")");
        if (x.first_row != row)
            refuse("whose rows do not cover " + row_range(now) + " of this run exactly: " +
                   (x.first_row > row ? "rows " + std::to_string(row) + ".." + std::to_string(x.first_row) + " are missing"
                                      : "rows from " + std::to_string(x.first_row) + " are in two shards"));
        row = x.first_row + x.rows_total;
    }
    if (row != now.first_row + now.rows_total)
        refuse("whose rows do not cover " + row_range(now) + " of this run exactly (they end at row " + std::to_string(row) +
               ")");
}

// Checks that a checkpoint belongs to this run: one segment, same configuration, files and range.
void check_resumable(const std::string& path, const run_state& st, const std::string& command, const run_config& cfg,
                     const input_segment& now, bool skipping, std::uint64_t passes) {
    auto refuse = [&](const std::string& why) {
        throw std::invalid_argument("--resume: checkpoint " + path + " belongs to a different run: " + why);
    };
    if (st.config.classes && !cfg.classes && now.labels.empty())
        refuse("it was written by " + st.command + " with labels (" + std::to_string(st.config.classes) + " classes), and " +
               command + " reads no labels; analyse it with " + command + " --from " + path);
    // A resume continues the run that wrote the checkpoint: another command would rewrite it as its own.
    // (merge records itself, not the command of the runs it merged: their state kind is checked on load.)
    if (!st.command.empty() && st.command != "merge" && st.command != command)
        refuse("it was written by " + st.command + ": continue it with " + st.command + " --resume (a finished state "
               "is analysed with --from " + path + ")");
    if (st.segments.size() != 1) return check_merge_resumable(path, st, cfg, now, passes);
    if (const std::string d = st.config.difference(cfg); !d.empty()) refuse(d);
    const input_segment& s = st.segments[0];
    if (!s.files.empty() || !now.files.empty())
        if (const std::string d = files_difference(s.files, now.files); !d.empty()) refuse("images: " + d);
    if (s.decoding != now.decoding)
        refuse("the images were decoded with '" + s.decoding + "', now '" + now.decoding + "'");
    // --skip-unreadable may be added on resume (a run stopped by an unreadable file then
    // continues past it: no file was skipped before), not dropped once files were skipped.
    if (!s.skipped.empty() && !skipping)
        refuse("it left out " + std::to_string(s.skipped.size()) + " unreadable file(s) (the first " +
               s.skipped.front().path + "): resume with --skip-unreadable");
    if (const std::string d = s.images.difference(now.images); !d.empty()) refuse("images: " + d);
    if (const std::string d = s.labels.difference(now.labels); !d.empty()) refuse("labels: " + d);
    if (s.format != now.format) refuse("the images format was " + s.format + ", now " + now.format);
    if (s.first_row != now.first_row || s.rows_total != now.rows_total)
        refuse("it covers " + row_range(s) + " (--skip/--limit), this run " + row_range(now));
    if (s.batch != now.batch)
        refuse("--batch was " + std::to_string(s.batch) + ", now " + std::to_string(now.batch) +
               " (the batch boundaries must stay the same)");
}

std::string fingerprint_text(const io::file_fingerprint& f) {
    if (f.empty()) return "(none)";
    return f.path + " size " + std::to_string(f.size) + " mtime_ns " + std::to_string(f.mtime_ns) + " hash " +
           std::to_string(f.content_hash);
}

std::string number(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Collective: every rank must run the same thing on the same files.
void require_agreement(const mpi_context& mpi, const std::string& command, const run_config& c, const input_segment& s,
                       const shard& sh) {
    mpi.require_agreement({
        {"command", command},
        {"method", c.method},
        {"dimension", std::to_string(c.dim)},
        {"classes", std::to_string(c.classes)},
        {"scale", number(c.scale)},
        {"rank/passes/seed/centering", std::to_string(c.rank) + "/" + std::to_string(c.passes) + "/" +
                                           std::to_string(c.seed) + "/" + std::to_string(c.center)},
        {"images", fingerprint_text(s.images)},
        {"labels", fingerprint_text(s.labels)},
        {"format", s.format},
        {"batch", std::to_string(s.batch)},
        {"whole range", "rows " + std::to_string(sh.whole_first_row) + " + " + std::to_string(sh.whole_rows)},
    });
}

// One run of the driver: the source of this rank's share, the run state and the checkpoint.
class run {
public:
    run(stream_state& state, const drive_input& in, const drive_options& o, const mpi_context& mpi)
        : state_(state), o_(o), mpi_(mpi), shard_(mpi.share(in.source, in.rows)), src_(shard_.options),
          path_(mpi.rank_file(o.checkpoint)) {
        st_.command = o.command;
        st_.config = in.config;
        st_.state_passes = state.passes();
        input_segment seg;
        seg.images = src_.images_fingerprint();
        seg.labels = src_.labels_fingerprint();
        seg.format = io::format_name(src_.format());
        seg.first_row = shard_.options.skip;
        seg.rows_total = src_.total();
        seg.batch = shard_.options.batch;
        seg.files = src_.files();
        seg.decoding = decoding_text(src_);
        seg.class_names = src_.class_names();
        require_agreement(mpi, o.command, in.config, seg, shard_);
        st_.segments.push_back(seg);
    }

    run_state go() {
        if (!path_.empty()) open_checkpoint();
        // Under mpirun the passes meet at collectives (stream_state::next_pass): ranks resumed
        // in different passes would wait for one another forever.
        if (!path_.empty() && o_.resume && state_.passes() > 1)
            mpi_.require_agreement({{"pass resumed in (per-rank checkpoints of different passes: run again "
                                     "without --resume)",
                                     std::to_string(st_.segments[0].pass)}});
        stream();
        if (!path_.empty()) save_checkpoint(path_, st_, state_);
        state_.reduce(mpi_);
        input_segment& s = st_.segments[0];
        gather_skipped(mpi_, s.skipped);
        const std::uint64_t done = mpi_.sum(s.rows_done);
        if (mpi_.rank() != 0) throw not_root{};
        // Rank 0 describes the whole range once the ranks' states are merged.
        s.first_row = shard_.whole_first_row;
        s.rows_total = shard_.whole_rows;
        s.rows_done = done;
        st_.n = state_.n();
        if (!s.skipped.empty() && !o_.quiet)
            std::fprintf(stderr, "recalign: left out %zu unreadable file(s) (--skip-unreadable), the first %s\n",
                         s.skipped.size(), s.skipped.front().path.c_str());
        return std::move(st_);
    }

private:
    // Refuses a checkpoint that can never be written or belongs to another run; resumes one
    // of this run; removes the temporaries a killed write left.
    void open_checkpoint() {
        require_state_file("--checkpoint", path_);
        // One writer per checkpoint: a second run is refused, naming the first's pid. Held
        // until this run object ends, after its last save.
        lock_.emplace(path_);
        const bool merged = resumes_merge();
        if (merged || file_exists(path_)) {
            if (!o_.resume) throw user_error("checkpoint " + path_ + " exists: pass --resume to continue it, or remove it");
            const std::string& from = merged ? o_.checkpoint : path_;
            memory_mark("before resuming");  // RECALIGN_MEMORY_TRACE: the load's peak on the next line
            // The run state's fields read and every byte's checksum checked; the state's parts are
            // then read from where they lie in the file (state_io.hpp), never the file at once.
            checkpoint_file file(from);
            run_state& old = file.state();
            input_segment whole = st_.segments[0];  // a merge covers the whole range, not this rank's share
            whole.first_row = shard_.whole_first_row;
            whole.rows_total = shard_.whole_rows;
            try {
                check_resumable(from, old, o_.command, st_.config, merged ? whole : st_.segments[0],
                                src_.options().skip_unreadable, state_.passes());
                state_.load_from(file.accumulator());
                if (merged && !state_.hold_whole())
                    throw std::invalid_argument("--resume: this run's state cannot continue the merged checkpoint " +
                                                from + " under mpirun: resume it in one process (without mpirun)");
            } catch (const std::invalid_argument& e) {
                if (merged) throw collective_refusal(e.what());  // every rank read the same file alike
                throw;
            } catch (const file_error& e) {
                if (merged) throw collective_refusal(e.what());
                throw;
            }
            memory_mark("checkpoint loaded");
            // A merge of shards: all of this run's range is read in the pass they finished.
            st_.segments[0].rows_done = old.segments.size() == 1 ? old.segments[0].rows_done : st_.segments[0].rows_total;
            st_.segments[0].pass = old.segments[0].pass;
            for (const input_segment& s : old.segments)
                if (!merged || mpi_.rank() == 0)  // gathered from every rank at the end
                    st_.segments[0].skipped.insert(st_.segments[0].skipped.end(), s.skipped.begin(), s.skipped.end());
            if (!o_.quiet && (!merged || mpi_.rank() == 0)) {
                const std::uint64_t passes = state_.passes();
                // A state whose stop ended its passes: the passes it read, not the planned count.
                const bool stopped = !state_.reads(st_.segments[0].pass);
                const std::string pass =
                    stopped ? " (stopped after " + std::to_string(state_.passes_read()) + " of at most " +
                                  std::to_string(passes) + " passes: nothing left to read)"
                    : passes > 1 ? " (pass " + std::to_string(st_.segments[0].pass + 1) + " of " + std::to_string(passes) + ")"
                                 : std::string();
                if (merged)
                    std::fprintf(stderr, "recalign: resuming the merge %s on all %d ranks at the end of its pass%s\n",
                                 from.c_str(), mpi_.size(), pass.c_str());
                else
                    std::fprintf(stderr, "recalign: resuming %s at row %llu of %llu%s\n", from.c_str(),
                                 (unsigned long long)st_.segments[0].rows_done,
                                 (unsigned long long)st_.segments[0].rows_total, pass.c_str());
            }
        }
        // A write killed mid-way leaves its temporary file (a prefix of a checkpoint, never
        // read): without this, every such kill of a days-long run would leave one forever.
        const std::size_t stale = checkpoint::remove_stale_temporaries(path_);
        if (stale && !o_.quiet)
            std::fprintf(stderr, "recalign: removed %zu temporary file(s) of an interrupted checkpoint write beside %s\n",
                         stale, path_.c_str());
    }

    // Under mpirun, --resume continues FILE.rank<r>; a merge of shards (`merge -o FILE`, the
    // checkpoint of every row) is continued by every rank at once when no rank has its own
    // file: each loads it, rank 0's state stands for the whole range at the next pass boundary
    // (stream_state::hold_whole) and each rank then reads its share of the next pass. A
    // one-process checkpoint FILE is refused (its row position is not any rank's).
    bool resumes_merge() const {
        if (!mpi_.active() || !o_.resume) return false;
        const bool own = file_exists(path_), whole = file_exists(o_.checkpoint);
        std::uint64_t segments = 0;
        if (whole && !own) segments = checkpoint_file(o_.checkpoint).state().segments.size();
        mpi_.require_agreement({{"--resume of " + o_.checkpoint + " (each rank its own FILE.rank<r>, or every rank "
                                 "the merge FILE when no rank has its own)",
                                 whole && !own ? "FILE" : "FILE.rank<r>"}});
        if (segments == 1)
            throw collective_refusal("--resume: " + o_.checkpoint + " is the checkpoint of a run in one process, and "
                                     "under mpirun each rank resumes its own " + o_.checkpoint + ".rank<r>: resume it "
                                     "without mpirun, or `merge` shards into it");
        return whole && !own;
    }

    void stream() {
        input_segment& seg = st_.segments[0];
        src_.seek(seg.rows_done);
        const signal_scope signals(!path_.empty());
        const std::uint64_t passes = state_.passes(), total = src_.total();
        progress bar(!o_.quiet && ::isatty(2), total * passes, seg.pass * total + src_.position());
        for (;;) {
            if (state_.reads(seg.pass)) stream_pass(bar);
            const std::uint64_t skip = state_.passes_to_skip(seg.pass);
            seg.pass += skip;
            if (skip) bar.update((seg.pass + 1) * total);
            // A pass an adaptive stop leaves unread has nothing left to read: it is done (`info`,
            // `merge` and --from see a complete run, not one waiting in its last pass).
            if (!state_.reads(seg.pass)) seg.rows_done = seg.rows_total;
            if (seg.pass + 1 >= passes) break;
            // Multi-pass states: each pass is one more read of the range.
            state_.next_pass(mpi_);
            seg.pass += 1;
            seg.rows_done = 0;
            src_.seek(0);
            // The stop (next_pass found nothing more to read): the loop's top skips the passes
            // left, and the run's end writes the checkpoint with the passes read.
            if (!state_.reads(seg.pass)) continue;
            if (!path_.empty() && o_.checkpoint_every) save_checkpoint(path_, st_, state_);
        }
        bar.finish();
    }

    void stream_pass(progress& bar) {
        input_segment& seg = st_.segments[0];
        io::source_batch b;
        std::uint64_t last_ckpt = src_.position();
        while (src_.next(b)) {
            try {
                if (b.rows) state_.update(b, seg.pass);
            } catch (const std::invalid_argument& e) {
                bar.finish();
                const io::source_options& so = shard_.options;
                throw input_error(so.describe() + (so.labels.empty() ? std::string() : " / " + so.labels.front()) + ": " +
                                  e.what());
            }
            // Skipped files are listed once, in the pass that reads them first.
            if (seg.pass == 0) seg.skipped.insert(seg.skipped.end(), b.skipped.begin(), b.skipped.end());
            seg.rows_done = src_.position();
            bar.update(seg.pass * src_.total() + src_.position());
            if (o_.hooks.batch_delay_ms)
                std::this_thread::sleep_for(std::chrono::milliseconds(o_.hooks.batch_delay_ms));
            if (!path_.empty() && o_.checkpoint_every && src_.position() - last_ckpt >= o_.checkpoint_every) {
                save_checkpoint(path_, st_, state_);
                last_ckpt = src_.position();
            }
            if (g_interrupted) interrupt(bar);
        }
    }

    [[noreturn]] void interrupt(progress& bar) {
        bar.finish();
        if (!path_.empty()) {
            save_checkpoint(path_, st_, state_);
            std::fprintf(stderr, "recalign: interrupted at row %llu; checkpoint %s written, continue with --resume\n",
                         (unsigned long long)(st_.segments[0].first_row + src_.position()), path_.c_str());
        }
        throw interrupted{};
    }

    stream_state& state_;
    const drive_options& o_;
    const mpi_context& mpi_;
    shard shard_;
    io::data_source src_;
    std::string path_;
    std::optional<io::checkpoint_lock> lock_;
    run_state st_;
};

}  // namespace

void save_checkpoint(const std::string& path, run_state& st, const stream_state& state) {
    memory_mark("before a checkpoint");  // RECALIGN_MEMORY_TRACE: the next line's peak is the save's
    st.n = state.n();
    // The passes read when an adaptive stop ended them (the last pass is then not read), else 0.
    st.passes_read = state.passes() && !state.reads(state.passes() - 1) ? state.passes_read() : 0;
    // The state's bytes go to the file as they are made (state_io.hpp): measured first (nothing is
    // made: a matrix on disk is only counted), then written once, the run state's header with its
    // checksum written over a placeholder at the end. No copy of the state is held beside it
    // (docs/benchmarks-log.md "ckpt10"; fix9: 0.85-1.23 times the file when it was).
    state_sink measure;
    state.save_to(measure);
    st.accumulator_bytes = measure.count();
    st.write_accumulator = [&state](const std::function<void(const char*, std::size_t)>& out) {
        state_sink sink(out);
        state.save_to(sink);
    };
    auto done = [&st] {
        st.write_accumulator = nullptr;
        st.accumulator_bytes = 0;
    };
    try {
        checkpoint::save_file_once(path, st);
    } catch (const std::system_error& e) {
        done();
        throw user_error(std::string("cannot write the checkpoint: ") + e.what());
    } catch (...) {
        done();
        throw;
    }
    done();
    memory_mark("checkpoint written");
}

run_state drive(stream_state& state, const drive_input& input, const drive_options& options, const mpi_context& mpi) {
    // Each rank would judge its own shard's estimate and the ranks' pass counts could differ.
    if (mpi.active() && input.config.tolerance > 0.0)
        throw user_error("--tolerance under mpirun is not supported yet (each rank would judge its own shard's "
                         "estimate): pass --passes alone, or run without mpirun");
    run r(state, input, options, mpi);
    return r.go();
}

run_state drive_from(stream_state& state, run_state from, const std::string& path, bool quiet, const mpi_context& mpi,
                     const std::string& command, const checkpoint_file* file) {
    if (mpi.rank() != 0) throw not_root{};  // nothing to share: rank 0 analyses the checkpoint
    try {
        if (file) {
            state.load_from(without_jitter_header(file->accumulator()));
        } else {
            state.loaded_at = from.accumulator_at;
            state.load(from.accumulator, path);
        }
    } catch (const file_error& e) {
        // Another command's state (denoise's tracker read by align): say whose it is.
        if (from.command.empty() || from.command == command) throw;
        throw user_error("--from " + path + ": a checkpoint of " + from.command + ", whose state " + command +
                         " cannot read: analyse it with " + from.command + " --from " + path + " (" + e.what() + ")");
    }
    from.accumulator.clear();
    if (!from.complete() && !quiet)
        std::fprintf(stderr, "recalign: note: %s is a partial run (%llu samples)\n", path.c_str(),
                     (unsigned long long)state.n());
    return from;
}

}  // namespace recalign::cli

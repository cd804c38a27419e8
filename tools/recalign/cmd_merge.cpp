// merge: combines checkpoints of runs over disjoint data into one (run checkpoints of any
// command, or library moment checkpoints).
#include <cstdio>
#include <fstream>
#include <memory>
#include <sstream>

#include "commands.hpp"
#include "driver.hpp"
#include "paths.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/files.hpp"
#include "recalign/io/lock.hpp"
#include "render.hpp"
#include "route_state.hpp"
#include "run_state.hpp"
#include "jitter_state.hpp"
#include "tracker_state.hpp"
#include "verified_state.hpp"

namespace recalign::cli {

namespace {

checkpoint::header read_header_of(const std::string& f) {
    require_input_file(f);
    std::ifstream is(f, std::ios::binary);
    if (!is) throw file_error(f, "cannot open checkpoint for reading");
    return checkpoint::read_header(is, f);
}

// The state a run checkpoint holds: denoise's tracker, or a route's accumulator.
// `owned` keeps the states a jitter_state wraps (verified shards keep their jitter header:
// their merge is resumed, and the resume checks it).
std::unique_ptr<stream_state> load_state(const run_state& st, const std::string& source,
                                         std::vector<std::unique_ptr<stream_state>>& owned) {
    // denoise's tracker is framed on its own (route states start with a length, or the magic
    // of an older exact checkpoint's joint scatter).
    if (st.config.method == "exact" && st.accumulator.size() >= checkpoint::header_bytes &&
        st.accumulator.compare(0, 8, "RECALIGN") == 0) {
        std::istringstream is(st.accumulator.substr(0, checkpoint::header_bytes));
        const checkpoint::header h = checkpoint::read_header(is, source + " (nested accumulator)");
        if (h.kind == checkpoint::state_kind::tracker)
            return std::make_unique<tracker_state>(
                checkpoint::from_bytes<alignment_tracker>(st.accumulator, source + " (nested accumulator)"));
    }
    const std::string inner = without_jitter_header(st.accumulator);
    if (verified_bytes(inner)) {
        auto v = std::make_unique<verified_state>(verified_state::for_merge(st.config, inner, source));
        const auto [sigma, seed] = jitter_of(st.accumulator);
        if (sigma == 0.0) return v;
        owned.push_back(std::move(v));
        return std::make_unique<jitter_state>(*owned.back(), sigma, seed);
    }
    auto s = std::make_unique<route_state>(st.config);
    s->load(st.accumulator, source);
    return s;
}

// Shards with a verification pass: the merge keeps their sketch passes only, so the merged
// run is complete up to its last sketch pass and continues from there (--resume).
void rewind_to_sketch(run_state& out) {
    for (input_segment& s : out.segments)
        if (s.pass + 1 >= out.config.passes) {
            s.pass = out.config.passes - 1;
            s.rows_done = s.rows_total;
        }
}

// Verified shards continue as row ranges of one input (driver.cpp, check_merge_resumable):
// shards of other files (or of several files read as one stream) could never be resumed, and
// a verified state is not analysed with --from, so their merge is refused here, not later.
void require_one_input(const input_segment& a, const input_segment& b, const std::string& first,
                       const std::string& f) {
    if (!a.files.empty() || !b.files.empty())
        throw std::invalid_argument("cannot merge " + f + ": runs with a verification pass merge as row ranges "
                                    "(--skip/--limit) of one images file, and these read image folders, lists or "
                                    "several files; run them with --no-verify, or read all of it in one run or under "
                                    "mpirun");
    if (a.images == b.images && a.labels == b.labels && a.format == b.format) return;
    throw std::invalid_argument("cannot merge " + f + ": runs with a verification pass merge as row ranges "
                                "(--skip/--limit) of one input, and its images are " + b.images.path + " (" +
                                b.format + "), those of " + first + " " + a.images.path + " (" + a.format +
                                "), or their labels differ; run the shards with --no-verify (the sketch's "
                                "estimates, labelled as such), or read all the files as one stream (repeated "
                                "--images) in one run or under mpirun");
}

bool segments_overlap(const input_segment& a, const input_segment& b) {
    if (a.images.path != b.images.path || a.images.content_hash != b.images.content_hash) return false;
    const std::uint64_t a0 = a.first_row, a1 = a.first_row + a.rows_done;
    const std::uint64_t b0 = b.first_row, b1 = b.first_row + b.rows_done;
    return a0 < b1 && b0 < a1;
}

merge_result merge_moments(const merge_options& o) {
    moment_accumulator acc = checkpoint::load_file<moment_accumulator>(o.inputs[0]);
    for (std::size_t i = 1; i < o.inputs.size(); ++i) {
        try {
            acc.merge(checkpoint::load_file<moment_accumulator>(o.inputs[i]));
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("cannot merge " + o.inputs[i] + ": " + e.what());
        }
    }
    write_output_file(o.output, checkpoint::to_bytes(acc));
    merge_result r;
    r.inputs = o.inputs.size();
    r.n = acc.n();
    r.moments = true;
    r.output = o.output;
    return r;
}

// An interrupted run's checkpoint holds only the rows it read: merged silently, the result
// would look complete. Said in a note.
run_state load_input(const std::string& f, merge_result& r) {
    run_state st = load_run_state(f);
    // Verified shards: their verification passes are dropped by the merge (rewind_to_sketch).
    if (st.complete(st.config.passes)) return st;
    std::uint64_t done = 0, total = 0;
    for (const input_segment& s : st.segments) done += s.rows_done, total += s.rows_total;
    r.notes.push_back(f + " is a checkpoint of an interrupted run: " + std::to_string(done) + " of its " +
                      std::to_string(total) + " rows are in the merge (finish it with --resume first to have them all)");
    return st;
}

merge_result merge_runs(const merge_options& o) {
    merge_result r;
    run_state out = load_input(o.inputs[0], r);
    std::vector<std::unique_ptr<stream_state>> owned;  // outlives every state below
    std::unique_ptr<stream_state> acc = load_state(out, o.inputs[0], owned);
    const bool verified = verified_bytes(without_jitter_header(out.accumulator));
    for (std::size_t i = 1; i < o.inputs.size(); ++i) {
        const std::string& f = o.inputs[i];
        run_state st = load_input(f, r);
        if (const std::string d = out.config.difference(st.config, o.inputs[0], f); !d.empty())
            throw std::invalid_argument("cannot merge " + f + " into " + o.inputs[0] + ": " + d);
        for (const input_segment& b : st.segments) {
            // Rows decoded differently, or class ids naming other classes, are not one data set.
            const input_segment& a = out.segments.front();
            if (verified) require_one_input(a, b, o.inputs[0], f);
            if (a.decoding != b.decoding)
                throw std::invalid_argument("cannot merge " + f + ": its images were decoded with \"" + b.decoding +
                                            "\", those of " + o.inputs[0] + " with \"" + a.decoding + "\"");
            if (!a.class_names.empty() && !b.class_names.empty() && a.class_names != b.class_names)
                throw std::invalid_argument("cannot merge " + f + ": its class names (" + std::to_string(b.class_names.size()) +
                                            ", first '" + b.class_names.front() + "') differ from those of " + o.inputs[0] +
                                            " (" + std::to_string(a.class_names.size()) + ", first '" +
                                            a.class_names.front() + "'): the same class id would mean other classes");
        }
        for (const input_segment& a : out.segments)
            for (const input_segment& b : st.segments)
                if (segments_overlap(a, b))
                    throw std::invalid_argument("cannot merge " + f + ": its rows " + std::to_string(b.first_row) + ".." +
                                                std::to_string(b.first_row + b.rows_done) + " of " + b.images.path +
                                                " overlap rows " + std::to_string(a.first_row) + ".." +
                                                std::to_string(a.first_row + a.rows_done) +
                                                " already in the merge (they would be counted twice)");
        try {
            acc->merge(*load_state(st, f, owned));
        } catch (const std::invalid_argument& e) {
            // Nyström's later passes iterate each shard's own basis (the library names the two
            // bases): say what merges instead.
            const std::string later = out.config.method == "nystrom" && out.config.passes > 1
                                          ? " (shards of a Nyström sketch of --passes " + std::to_string(out.config.passes) +
                                                " merge only within their first pass: each later pass iterates its own "
                                                "shard's basis; run the shards with --passes 1 (a denoise run that refines "
                                                "a masking noise takes 2 by default), or all the rows under mpirun)"
                                          : "";
            throw std::invalid_argument("cannot merge " + f + " into " + o.inputs[0] + ": " + e.what() + later);
        }
        out.segments.insert(out.segments.end(), st.segments.begin(), st.segments.end());
    }
    const std::string command = out.command;
    out.command = "merge";
    if (verified) {
        rewind_to_sketch(out);
        r.notes.push_back("the runs' verification passes are not in " + o.output +
                          " (each verified its own shard's sketch): resume it with the whole input, e.g. `" +
                          command + " ... --checkpoint " + o.output + " --resume`, to verify the merged sketch");
    }
    save_checkpoint(o.output, out, *acc);
    r.inputs = o.inputs.size();
    r.n = acc->n();
    r.segments = out.segments.size();
    r.output = o.output;
    return r;
}

}  // namespace

int cmd_merge(const merge_options& o) {
    if (o.inputs.size() < 2) throw std::invalid_argument("merge needs at least two checkpoints");
    require_state_file("-o", o.output);
    const io::checkpoint_lock lock(o.output);  // no run may be writing the output meanwhile
    const bool replaces = file_exists(o.output);
    std::vector<checkpoint::header> headers;
    for (const std::string& f : o.inputs) headers.push_back(read_header_of(f));
    for (std::size_t i = 1; i < headers.size(); ++i)
        if (headers[i].kind != headers[0].kind)
            throw std::invalid_argument("cannot merge " + o.inputs[0] + " (" + checkpoint_kind_name(headers[0].kind) +
                                        ") with " + o.inputs[i] + " (" + checkpoint_kind_name(headers[i].kind) + ")");
    if (headers[0].kind != checkpoint::state_kind::moments && headers[0].kind != run_state::kind)
        throw std::invalid_argument(std::string("merge reads recalign run checkpoints or moment checkpoints, not ") +
                                    checkpoint_kind_name(headers[0].kind));
    merge_result r = headers[0].kind == checkpoint::state_kind::moments ? merge_moments(o) : merge_runs(o);
    if (replaces) r.notes.push_back("replaced the existing " + o.output);
    for (const std::string& n : r.notes) std::fprintf(stderr, "recalign: note: %s\n", n.c_str());
    print_stdout(render_text(r));
    return 0;
}

}  // namespace recalign::cli

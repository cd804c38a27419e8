// info: a checkpoint's header and summary, after loading it in full (a truncated or corrupt
// checkpoint is an error whatever its kind, not a header printed as if the rest were sound).
#include <algorithm>
#include <fstream>

#include "commands.hpp"
#include "paths.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/monte_carlo_sketch.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/files.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/stats/class_moments.hpp"
#include "render.hpp"
#include "run_state.hpp"
#include "state_io.hpp"
#include "jitter_state.hpp"
#include "verified_state.hpp"

namespace recalign::cli {

namespace {

// Samples in a library-level checkpoint of a kind the CLI does not analyse.
std::uint64_t library_state_samples(const std::string& f, checkpoint::state_kind kind) {
    switch (kind) {
        case checkpoint::state_kind::frequent_directions: return checkpoint::load_file<frequent_directions>(f).n();
        case checkpoint::state_kind::nystrom: return checkpoint::load_file<nystrom_sketch>(f).n();
        case checkpoint::state_kind::tracker: return checkpoint::load_file<alignment_tracker>(f).n();
        case checkpoint::state_kind::noise: return checkpoint::load_file<monte_carlo_noise>(f).n();
        case checkpoint::state_kind::class_moments: return checkpoint::load_file<class_moments>(f).n();
        case checkpoint::state_kind::patch_blocks: return checkpoint::load_file<patch_blocks>(f).n();
        case checkpoint::state_kind::restricted_moments: return checkpoint::load_file<restricted_moments>(f).n();
        case checkpoint::state_kind::monte_carlo_sketch: return checkpoint::load_file<monte_carlo_sketch>(f).n();
        default: break;
    }
    throw file_error(f, 16, "unknown checkpoint kind " + std::to_string(static_cast<std::uint32_t>(kind)) +
                                " (written by a newer recalign?)");
}

// The passes of a run and the rows each has read: a verified run's verification passes come
// after its sketch passes; a merge of verified shards waits at the end of its sketch passes.
void fill_progress(info_result& r, const run_state& st) {
    const std::string inner = without_jitter_header(st.accumulator);
    r.verified = verified_bytes(inner) || inner.compare(0, 8, "RAMCVERI") == 0;
    const std::uint64_t sketch = st.config.passes;
    r.passes_known = !r.verified || st.state_passes > sketch;
    r.verification_passes = r.verified && r.passes_known ? st.state_passes - sketch : 0;
    std::uint64_t total = sketch + r.verification_passes, read = 0;
    for (const input_segment& s : st.segments) total = std::max(total, s.pass + 1);
    r.rows_per_pass.assign(static_cast<std::size_t>(total), 0);
    for (const input_segment& s : st.segments) {
        read += s.rows_total;
        for (std::uint64_t p = 0; p < s.pass; ++p) r.rows_per_pass[static_cast<std::size_t>(p)] += s.rows_total;
        r.rows_per_pass[static_cast<std::size_t>(s.pass)] += s.rows_done;
    }
    r.complete = r.passes_known && st.complete(total);
    // An adaptive stop ended the verification passes (the passes read fall short of those
    // planned; the driver marks the passes left as done): only the passes read are listed.
    r.refinement_stopped = r.verified && r.passes_known && st.passes_read > sketch && st.passes_read < total;
    if (r.refinement_stopped) {
        r.planned_verification_passes = r.verification_passes;
        r.verification_passes = st.passes_read - sketch;
        r.rows_per_pass.resize(static_cast<std::size_t>(st.passes_read));
    }
    if (r.complete) return;
    std::size_t next = 0;  // the first pass not read in full
    while (next < r.rows_per_pass.size() && r.rows_per_pass[next] == read) ++next;
    const bool in_sketch = next < sketch;
    const std::string of = in_sketch || !r.verified ? std::to_string(r.verified ? sketch : total)
                           : r.passes_known         ? std::to_string(r.verification_passes)
                                                    : std::string("a number this older checkpoint does not record");
    r.pending = std::string(!r.verified ? "pass " : in_sketch ? "sketch pass " : "verification pass ") +
                std::to_string(in_sketch || !r.verified ? next + 1 : next - sketch + 1) + " of " + of + " (" +
                std::to_string(next < r.rows_per_pass.size() ? r.rows_per_pass[next] : 0) + " of " + std::to_string(read) +
                " rows read)" + (r.verified ? "; the numbers printed come from the last verification pass: none yet" : "") +
                (st.segments.size() > 1 ? "; resume it with the whole input (the shards' command, --checkpoint FILE --resume)"
                                        : "; continue it with --resume");
}

void fill_run(info_result& r, const run_state& st) {
    r.run = true;
    r.command = st.command;
    r.method = st.config.method;
    r.classes = st.config.classes;
    r.scale = st.config.scale;
    r.rank = st.config.rank;
    r.passes = st.config.passes;
    r.test_matrix = st.config.test_matrix;
    r.seed = st.config.seed;
    r.n = st.n;
    fill_progress(r, st);
    for (const input_segment& s : st.segments) {
        info_segment g;
        g.images = s.images.path;
        g.images_bytes = s.images.size;
        g.images_hash = s.images.content_hash;
        g.labels = s.labels.empty() ? std::string() : s.labels.path;
        g.format = s.format;
        g.first_row = s.first_row;
        g.rows_total = s.rows_total;
        g.rows_done = s.rows_done;
        g.batch = s.batch;
        g.pass = s.pass;
        g.decoding = s.decoding;
        g.class_names = s.class_names;
        g.skipped = s.skipped;
        r.segments.push_back(g);
    }
}

info_result inspect(const std::string& f) {
    require_input_file(f);
    checkpoint::header h;
    info_result r;
    {
        std::ifstream is(f, std::ios::binary);
        if (!is) throw file_error(f, "cannot open checkpoint for reading");
        h = checkpoint::read_header(is, f);
        is.seekg(0, std::ios::end);
        r.file_bytes = static_cast<std::uint64_t>(is.tellg());
    }
    // A header may claim up to checkpoint::max_payload_bytes: a file that does not hold
    // them is truncated or corrupt, said here rather than printed as if it were whole.
    if (r.file_bytes - checkpoint::header_bytes < h.payload_bytes)
        throw file_error(f, r.file_bytes, "truncated checkpoint: the header announces a payload of " +
                                              std::to_string(h.payload_bytes) + " bytes, the file has " +
                                              std::to_string(r.file_bytes - checkpoint::header_bytes) + " after the header");
    r.file = f;
    r.kind = checkpoint_kind_name(h.kind);
    r.version = h.version;
    r.dim = h.dim;
    r.aux = h.aux;
    r.config_hash = h.config_hash;
    r.payload_bytes = h.payload_bytes;
    if (h.kind == run_state::kind) {
        // Checked by blocks; of the state only its first bytes are read (the jitter tag and the
        // state's magic: what fill_progress needs), not the whole file.
        checkpoint_file file(f);
        const state_source state = file.accumulator();
        file.state().accumulator = state.bytes(0, std::min<std::uint64_t>(state.size(), 32));
        fill_run(r, file.state());
    } else if (h.kind == checkpoint::state_kind::moments) {
        const moment_accumulator m = checkpoint::load_file<moment_accumulator>(f);
        r.n = m.n();
        r.classes = m.classes();
        r.has_classes = true;
    } else {
        r.n = library_state_samples(f, h.kind);
    }
    return r;
}

}  // namespace

int cmd_info(const info_options& o) {
    const info_result r = inspect(o.file);
    print_stdout(o.json ? render_json(r) : render_text(r));
    return 0;
}

}  // namespace recalign::cli

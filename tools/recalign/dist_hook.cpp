#include "dist_hook.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <sstream>
#include <stdexcept>
#include <vector>

#ifdef RECALIGN_HAVE_MPI
#include "recalign/dist/mpi.hpp"
#endif

namespace recalign::cli::dist_hook {

#ifdef RECALIGN_HAVE_MPI

namespace {

bool g_active = false;
int g_rank = 0, g_size = 1;
std::string g_command_line;
// The whole range before sharding (set by shard_options), for rank 0's merged segment.
std::uint64_t g_whole_first_row = 0, g_whole_rows = 0;
bool g_sharded = false;
bool g_refused_alike = false;

bool started_by_mpirun() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
        if (std::getenv(v)) return true;
    return false;
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

}  // namespace

session::session(int& argc, char**& argv) {
    for (int i = 0; i < argc; ++i) g_command_line += (i ? " " : "") + std::string(argv[i]);
    if (!started_by_mpirun()) return;
    MPI_Init(&argc, &argv);
    g_active = true;
    g_rank = dist::rank_of(MPI_COMM_WORLD);
    g_size = dist::size_of(MPI_COMM_WORLD);
}

int session::finish(int status) {
    if (!g_active || finished_) return status;
    finished_ = true;
    // A failed rank may leave the others blocked in a reduction: end the job. A refusal every
    // rank reached alike needs no abort: each rank is here, and aborting would race the
    // ranks' exits against one another.
    if (status != 0 && g_size > 1 && !g_refused_alike) {
        std::fflush(stdout);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    MPI_Finalize();
    return status;
}

session::~session() { finish(0); }

void refused_alike() { g_refused_alike = true; }
bool active() { return g_active; }
int rank() { return g_rank; }
int size() { return g_size; }

run_args per_rank(const run_args& r) {
    if (!g_active) return r;
    if (!r.from.empty() && g_rank != 0) throw not_root{};
    run_args out = r;
    if (!out.checkpoint.empty()) out.checkpoint += ".rank" + std::to_string(g_rank);
    return out;
}

io::source_options shard_options(const io::source_options& whole) {
    if (!g_active) return whole;
    // The whole range's size needs the file's header only (no data is read).
    const io::data_source probe(whole);
    const std::uint64_t rows = probe.total(), batch = whole.batch ? whole.batch : 1;
    const std::uint64_t batches = (rows + batch - 1) / batch;
    // An empty whole range is the CLI's own error to report; fewer batches than ranks would
    // leave a rank with nothing to read (every rank computes this alike and refuses alike).
    if (rows == 0) return whole;
    if (batches < static_cast<std::uint64_t>(g_size))
        throw collective_refusal("mpirun -n " + std::to_string(g_size) + ": the " + std::to_string(rows) +
                                    " rows make only " + std::to_string(batches) + " batch(es) of --batch " +
                                    std::to_string(batch) + ", fewer than the ranks; use a smaller --batch or fewer ranks");
    const auto r = static_cast<std::uint64_t>(g_rank), R = static_cast<std::uint64_t>(g_size);
    const std::uint64_t lo = std::min(rows, batches * r / R * batch), hi = std::min(rows, batches * (r + 1) / R * batch);
    g_whole_first_row = whole.skip;
    g_whole_rows = rows;
    g_sharded = true;
    io::source_options mine = whole;
    mine.skip = whole.skip + lo;
    mine.limit = hi - lo;  // >= 1 batch: batches >= ranks
    return mine;
}

void check_agreement(const std::string& command, const run_config& c, const input_segment& s) {
    if (!g_active) return;
    const std::vector<dist::config_field> fields = {
        {"command line", g_command_line},
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
        {"whole range", "rows " + std::to_string(g_whole_first_row) + " + " + std::to_string(g_whole_rows)},
    };
    try {
        dist::require_agreement(MPI_COMM_WORLD, fields, "mpirun: the ranks' runs differ");
    } catch (const dist::rank_disagreement& e) {
        throw collective_refusal(e.what());  // every rank compared the same gathered text
    }
}

void reduce(run_state& st, engine& eng) {
    if (!g_active) return;
    std::uint64_t done = st.segments.empty() ? 0 : st.segments[0].rows_done, done_total = 0;
    // Integer sum: exact in any order.
    MPI_Reduce(&done, &done_total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);
    if (st.config.method == "exact") {
        std::optional<moment_accumulator> m = dist::reduce(eng.moments(), MPI_COMM_WORLD, 0);
        if (g_rank != 0) throw not_root{};
        std::ostringstream os(std::ios::binary);
        m->save(os);
        eng.load(os.str(), "the ranks' merged state");
    } else {
        const run_config cfg = st.config;
        std::optional<std::string> bytes =
            dist::tree_reduce_bytes(MPI_COMM_WORLD, eng.save(), [&](const std::string& lower, const std::string& upper) {
                engine a(cfg), b(cfg);
                a.load(lower, "rank state");
                b.load(upper, "rank state");
                a.merge(b);
                return a.save();
            });
        if (g_rank != 0) throw not_root{};
        eng.load(*bytes, "the ranks' merged state");
    }
    if (g_sharded && !st.segments.empty()) {
        input_segment& s = st.segments[0];
        s.first_row = g_whole_first_row;
        s.rows_total = g_whole_rows;
        s.rows_done = done_total;
    }
    st.n = eng.n();
}

#else  // no MPI in this build: a single process, always.

session::session(int&, char**&) {}
int session::finish(int status) { return status; }
session::~session() = default;
void refused_alike() {}
bool active() { return false; }
int rank() { return 0; }
int size() { return 1; }
run_args per_rank(const run_args& r) { return r; }
io::source_options shard_options(const io::source_options& whole) { return whole; }
void check_agreement(const std::string&, const run_config&, const input_segment&) {}
void reduce(run_state&, engine&) {}

#endif

}  // namespace recalign::cli::dist_hook

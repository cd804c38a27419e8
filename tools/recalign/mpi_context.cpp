#include "mpi_context.hpp"

#include <algorithm>
#include <cstdio>
#include <cstdlib>

#ifdef RECALIGN_HAVE_MPI
#include "recalign/dist/mpi.hpp"
#endif

namespace recalign::cli {

std::string mpi_context::rank_file(const std::string& path) const {
    return active_ && !path.empty() ? path + ".rank" + std::to_string(rank_) : path;
}

shard mpi_context::share(const io::source_options& whole, std::uint64_t rows) const {
    shard s;
    s.options = whole;
    s.whole_first_row = whole.skip;
    s.whole_rows = rows;
    if (!active_ || rows == 0) return s;
    const std::uint64_t batch = whole.batch ? whole.batch : 1;
    const std::uint64_t batches = (rows + batch - 1) / batch;
    // Fewer batches than ranks would leave a rank with nothing to read (every rank computes
    // this alike and refuses alike).
    if (batches < static_cast<std::uint64_t>(size_))
        throw collective_refusal("mpirun -n " + std::to_string(size_) + ": the " + std::to_string(rows) +
                                 " rows make only " + std::to_string(batches) + " batch(es) of --batch " +
                                 std::to_string(batch) + ", fewer than the ranks; use a smaller --batch or fewer ranks");
    const auto r = static_cast<std::uint64_t>(rank_), R = static_cast<std::uint64_t>(size_);
    const std::uint64_t lo = std::min(rows, batches * r / R * batch), hi = std::min(rows, batches * (r + 1) / R * batch);
    s.options.skip = whole.skip + lo;
    s.options.limit = hi - lo;  // >= 1 batch: batches >= ranks
    return s;
}

#ifdef RECALIGN_HAVE_MPI

namespace {
bool started_by_mpirun() {
    for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
        if (std::getenv(v)) return true;
    return false;
}
}  // namespace

mpi_context::mpi_context(int& argc, char**& argv) {
    for (int i = 0; i < argc; ++i) command_line_ += (i ? " " : "") + std::string(argv[i]);
    if (!started_by_mpirun()) return;
    MPI_Init(&argc, &argv);
    active_ = true;
    rank_ = dist::rank_of(MPI_COMM_WORLD);
    size_ = dist::size_of(MPI_COMM_WORLD);
}

int mpi_context::finish(int status) {
    if (!active_ || finished_) return status;
    finished_ = true;
    // A refusal every rank reached alike needs no abort: each rank is here, and aborting
    // would race the ranks' exits against one another.
    if (status != 0 && size_ > 1 && !refused_alike_) {
        std::fflush(stdout);
        std::fflush(stderr);
        MPI_Abort(MPI_COMM_WORLD, status);
    }
    MPI_Finalize();
    return status;
}

void mpi_context::require_agreement(std::vector<std::pair<std::string, std::string>> fields) const {
    if (!active_) return;
    std::vector<dist::config_field> all = {{"command line", command_line_}};
    for (auto& f : fields) all.push_back({std::move(f.first), std::move(f.second)});
    try {
        dist::require_agreement(MPI_COMM_WORLD, all, "mpirun: the ranks' runs differ");
    } catch (const dist::rank_disagreement& e) {
        throw collective_refusal(e.what());  // every rank compared the same gathered text
    }
}

std::optional<moment_accumulator> mpi_context::reduce(const moment_accumulator& local) const {
    if (!active_) return local;
    return dist::reduce(local, MPI_COMM_WORLD, 0);
}

std::optional<alignment_tracker> mpi_context::reduce(const alignment_tracker& local) const {
    if (!active_) return local;
    return dist::reduce(local, MPI_COMM_WORLD, 0);
}

std::optional<std::string> mpi_context::reduce_bytes(std::string local, const merge_fn& merge) const {
    if (!active_) return local;
    return dist::tree_reduce_bytes(MPI_COMM_WORLD, std::move(local), merge);
}

std::uint64_t mpi_context::sum(std::uint64_t local) const {
    if (!active_) return local;
    std::uint64_t total = 0;
    MPI_Reduce(&local, &total, 1, MPI_UINT64_T, MPI_SUM, 0, MPI_COMM_WORLD);  // integers: exact in any order
    return total;
}

std::string mpi_context::broadcast_bytes(std::string bytes) const {
    if (!active_) return bytes;
    return dist::broadcast_bytes(MPI_COMM_WORLD, std::move(bytes), 0);
}

#else  // no MPI in this build: a single process, always.

mpi_context::mpi_context(int&, char**&) {}
int mpi_context::finish(int status) { return status; }
void mpi_context::require_agreement(std::vector<std::pair<std::string, std::string>>) const {}
std::optional<moment_accumulator> mpi_context::reduce(const moment_accumulator& local) const { return local; }
std::optional<alignment_tracker> mpi_context::reduce(const alignment_tracker& local) const { return local; }
std::optional<std::string> mpi_context::reduce_bytes(std::string local, const merge_fn&) const { return local; }
std::uint64_t mpi_context::sum(std::uint64_t local) const { return local; }
std::string mpi_context::broadcast_bytes(std::string bytes) const { return bytes; }

#endif

mpi_context::~mpi_context() { finish(0); }

}  // namespace recalign::cli

#include "recalign/dist/mpi.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <sstream>
#include <thread>
#include <utility>

#include "recalign/core/hash.hpp"

namespace recalign::dist {

namespace {

// Tags of this module's point-to-point messages (a reduction is collective, so at most one
// is in flight between two ranks at a time and these never collide with each other).
constexpr int tag_size = 0x5243;    // "RC"
constexpr int tag_bytes = 0x5244;
constexpr int tag_scatter = 0x5245;
// MPI counts are int: messages go in chunks of at most 256 MiB.
constexpr std::size_t chunk_bytes = std::size_t(1) << 28;
constexpr std::size_t chunk_doubles = chunk_bytes / sizeof(double);

void check(int rc, const char* what) {
    if (rc == MPI_SUCCESS) return;
    char text[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, text, &len);
    throw std::runtime_error(std::string(what) + ": " + std::string(text, static_cast<std::size_t>(len)));
}

// A failure after the ranks agreed (a merge that throws, a failed message) leaves the other
// ranks blocked in the tree: report it and end the whole job rather than hang.
[[noreturn]] void abort_job(MPI_Comm comm, const std::string& what) {
    int rank = -1;
    MPI_Comm_rank(comm, &rank);
    std::fprintf(stderr, "recalign: rank %d: distributed reduction failed after the ranks agreed: %s\n", rank,
                 what.c_str());
    std::fflush(stderr);
    MPI_Abort(comm, 1);
    std::abort();
}

template <class F>
auto or_abort(MPI_Comm comm, F&& f) -> decltype(f()) {
    try {
        return f();
    } catch (const std::exception& e) {
        abort_job(comm, e.what());
    }
}

void send_bytes(MPI_Comm comm, const std::string& s, int dest) {
    const std::uint64_t n = s.size();
    check(MPI_Send(&n, 1, MPI_UINT64_T, dest, tag_size, comm), "MPI_Send");
    for (std::uint64_t off = 0; off < n; off += chunk_bytes) {
        const int count = static_cast<int>(std::min<std::uint64_t>(chunk_bytes, n - off));
        check(MPI_Send(s.data() + off, count, MPI_BYTE, dest, tag_bytes, comm), "MPI_Send");
    }
}

std::string recv_bytes(MPI_Comm comm, int src) {
    std::uint64_t n = 0;
    check(MPI_Recv(&n, 1, MPI_UINT64_T, src, tag_size, comm, MPI_STATUS_IGNORE), "MPI_Recv");
    std::string s(static_cast<std::size_t>(n), '\0');
    for (std::uint64_t off = 0; off < n; off += chunk_bytes) {
        const int count = static_cast<int>(std::min<std::uint64_t>(chunk_bytes, n - off));
        check(MPI_Recv(&s[off], count, MPI_BYTE, src, tag_bytes, comm, MPI_STATUS_IGNORE), "MPI_Recv");
    }
    return s;
}

template <class T>
std::string to_bytes(const T& t) {
    return checkpoint::to_bytes(t);
}

template <class T>
T from_bytes(const std::string& b) {
    return checkpoint::from_bytes<T>(b, "a rank's state");
}

std::string hex(std::uint64_t v) {
    char buf[24];
    std::snprintf(buf, sizeof buf, "%016llx", static_cast<unsigned long long>(v));
    return buf;
}

std::string num(double v) {
    char buf[40];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

// Position of `rank` in the tree rooted at `root`, and back.
int relative(int rank, int root, int size) { return (rank - root + size) % size; }
int absolute(int v, int root, int size) { return (v + root) % size; }

// The fixed binary tree on a typed state: states travel as checkpoint bytes; the lower
// position merges in the upper one.
template <class T>
std::optional<T> tree_reduce(const T& local, MPI_Comm comm, int root, const char* what) {
    require_agreement(comm, agreement_fields(local), what);
    const int size = size_of(comm), v = relative(rank_of(comm), root, size);
    if (root < 0 || root >= size) throw std::invalid_argument("reduce: root " + std::to_string(root) + " out of range");
    std::optional<T> acc;
    for (int step = 1; step < size; step <<= 1) {
        if (v % (2 * step) == 0) {
            if (v + step >= size) continue;
            or_abort(comm, [&] {
                const std::string in = recv_bytes(comm, absolute(v + step, root, size));
                if (!acc) acc.emplace(local);
                acc->merge(from_bytes<T>(in));
                return 0;
            });
        } else {
            or_abort(comm, [&] {
                send_bytes(comm, acc ? to_bytes(*acc) : to_bytes(local), absolute(v - step, root, size));
                return 0;
            });
            return std::nullopt;
        }
    }
    if (!acc) acc.emplace(local);
    return acc;
}

template <class T>
T all_reduce_via_root(const T& local, MPI_Comm comm) {
    std::optional<T> r = reduce(local, comm, 0);
    const std::string bytes = broadcast_bytes(comm, r ? to_bytes(*r) : std::string(), 0);
    // Every rank, the root included, returns the state decoded from the same bytes.
    return or_abort(comm, [&] { return from_bytes<T>(bytes); });
}

const char* target_mode_text(target_mode m) {
    switch (m) {
        case target_mode::none: return "none";
        case target_mode::class_ids: return "class ids";
        case target_mode::dense: return "dense targets";
    }
    return "unknown";
}

// Ranks reach a reduction at different times (uneven shards, a busy node). MPI implementations
// busy-poll inside blocking calls, so a rank that finished early would burn a core the others
// need; wait in a non-blocking barrier with short sleeps instead.
void sleepy_barrier(MPI_Comm comm) {
    MPI_Request request;
    check(MPI_Ibarrier(comm, &request), "MPI_Ibarrier");
    int done = 0;
    for (;;) {
        check(MPI_Test(&request, &done, MPI_STATUS_IGNORE), "MPI_Test");
        if (done) return;
        std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
}

}  // namespace

int rank_of(MPI_Comm comm) {
    int r = 0;
    check(MPI_Comm_rank(comm, &r), "MPI_Comm_rank");
    return r;
}

int size_of(MPI_Comm comm) {
    int s = 0;
    check(MPI_Comm_size(comm, &s), "MPI_Comm_size");
    return s;
}

void require_agreement(MPI_Comm comm, const std::vector<config_field>& fields, const std::string& what) {
    // Serialize as "name\0value\0..." and gather every rank's text on every rank, so that all
    // ranks compare the same data and throw the same message.
    std::string mine;
    for (const config_field& f : fields) {
        mine += f.name;
        mine.push_back('\0');
        mine += f.value;
        mine.push_back('\0');
    }
    if (mine.size() > (1u << 30)) throw std::invalid_argument("require_agreement: configuration text too long");
    sleepy_barrier(comm);
    const int size = size_of(comm);
    const int len = static_cast<int>(mine.size());
    std::vector<int> lens(static_cast<std::size_t>(size)), displs(static_cast<std::size_t>(size));
    check(MPI_Allgather(&len, 1, MPI_INT, lens.data(), 1, MPI_INT, comm), "MPI_Allgather");
    std::size_t total = 0;
    for (int r = 0; r < size; ++r) {
        displs[r] = static_cast<int>(total);
        total += static_cast<std::size_t>(lens[r]);
        if (total > (std::size_t(1) << 31) - 1) throw std::invalid_argument("require_agreement: configuration text too long");
    }
    std::string all(total, '\0');
    check(MPI_Allgatherv(mine.data(), len, MPI_CHAR, &all[0], lens.data(), displs.data(), MPI_CHAR, comm),
          "MPI_Allgatherv");

    std::vector<std::vector<config_field>> per_rank(static_cast<std::size_t>(size));
    for (int r = 0; r < size; ++r) {
        const std::string text = all.substr(static_cast<std::size_t>(displs[r]), static_cast<std::size_t>(lens[r]));
        std::size_t pos = 0;
        while (pos < text.size()) {
            const std::size_t a = text.find('\0', pos);
            const std::size_t b = text.find('\0', a + 1);
            per_rank[r].push_back({text.substr(pos, a - pos), text.substr(a + 1, b - a - 1)});
            pos = b + 1;
        }
    }
    std::string problems;
    auto add_problem = [&](const std::string& p) { problems += (problems.empty() ? "" : "; ") + p; };
    // Field lists of different shapes: a caller bug (or different builds); say so plainly.
    bool same_names = true;
    for (int r = 1; r < size; ++r) {
        if (per_rank[r].size() != per_rank[0].size()) same_names = false;
        else
            for (std::size_t i = 0; i < per_rank[0].size(); ++i)
                if (per_rank[r][i].name != per_rank[0][i].name) same_names = false;
    }
    if (!same_names) {
        std::string lists;
        for (int r = 0; r < size; ++r) {
            lists += (r ? "; rank " : "rank ") + std::to_string(r) + ":";
            for (const config_field& f : per_rank[r]) lists += " " + f.name;
        }
        throw rank_disagreement(what + ": ranks check different configuration fields (" + lists + ")");
    }
    for (std::size_t i = 0; i < per_rank[0].size(); ++i) {
        // Distinct values in order of first appearance, with the ranks holding each.
        std::vector<std::pair<std::string, std::vector<int>>> groups;
        for (int r = 0; r < size; ++r) {
            const std::string& v = per_rank[r][i].value;
            auto it = std::find_if(groups.begin(), groups.end(), [&](const auto& g) { return g.first == v; });
            if (it == groups.end()) groups.push_back({v, {r}});
            else it->second.push_back(r);
        }
        if (groups.size() < 2) continue;
        std::string p = per_rank[0][i].name + " (";
        for (std::size_t g = 0; g < groups.size(); ++g) {
            if (g) p += "; ";
            p += "'" + groups[g].first + "' on rank" + (groups[g].second.size() > 1 ? "s " : " ");
            for (std::size_t k = 0; k < groups[g].second.size(); ++k)
                p += (k ? ", " : "") + std::to_string(groups[g].second[k]);
        }
        add_problem(p + ")");
    }
    if (!problems.empty()) throw rank_disagreement(what + ": ranks disagree on " + problems);
}

std::vector<config_field> agreement_fields(const moment_accumulator& m) {
    return {
        {"state", "moment_accumulator"},
        {"dimension", std::to_string(m.dim())},
        {"targets", std::string(target_mode_text(m.options().targets)) + " x " + std::to_string(m.classes())},
        {"configuration hash", hex(m.config_hash())},
    };
}

std::vector<config_field> agreement_fields(const frequent_directions& fd) {
    return {
        {"state", "frequent_directions"},
        {"dimension", std::to_string(fd.dim())},
        {"ell", std::to_string(fd.options().ell)},
        {"centering", centering_name(fd.options().center)},
        {"configuration hash", hex(fd.config_hash())},
    };
}

std::vector<config_field> agreement_fields(const nystrom_sketch& s) {
    const matrix_t& t = s.test_matrix();
    // [Ω or Q | G]: regenerated from the seed in pass 0, the shared power-iteration basis after.
    const std::uint64_t test_hash = fnv1a().add_bytes(t.data(), t.size() * sizeof(double)).value();
    return {
        {"state", "nystrom_sketch"},
        {"dimension", std::to_string(s.dim())},
        {"rank", std::to_string(s.options().rank)},
        {"oversampling", std::to_string(s.options().oversampling)},
        {"probes", std::to_string(s.options().probes)},
        {"seed", std::to_string(s.options().seed)},
        {"centering", centering_name(s.options().center)},
        {"pass", std::to_string(s.pass())},
        {"test matrix hash", hex(test_hash)},
        {"configuration hash", hex(s.config_hash())},
    };
}

std::vector<config_field> agreement_fields(const alignment_tracker& t) {
    const tracker_options& o = t.options();
    std::string noises;
    for (const noise_spec& s : o.noises) noises += (noises.empty() ? "" : " ") + to_string(s);
    return {
        {"state", "alignment_tracker"},
        {"dimension", std::to_string(o.dim)},
        {"classes", std::to_string(o.classes)},
        {"image shape", std::to_string(o.shape.height) + "x" + std::to_string(o.shape.width) + "x" +
                            std::to_string(o.shape.channels) + " " + image_layout_name(o.shape.layout)},
        {"noise models", noises.empty() ? "(none)" : noises},
        {"measure", measure_name(o.measure)},
        {"centering", centering_name(o.center)},
        {"replicates", std::to_string(o.replicates)},
        {"rel_tol", num(o.rel_tol)},
        {"configuration hash", hex(t.config_hash())},
    };
}

std::string broadcast_bytes(MPI_Comm comm, std::string bytes, int root) {
    std::uint64_t n = bytes.size();
    check(MPI_Bcast(&n, 1, MPI_UINT64_T, root, comm), "MPI_Bcast");
    bytes.resize(static_cast<std::size_t>(n));
    for (std::uint64_t off = 0; off < n; off += chunk_bytes) {
        const int count = static_cast<int>(std::min<std::uint64_t>(chunk_bytes, n - off));
        check(MPI_Bcast(&bytes[off], count, MPI_BYTE, root, comm), "MPI_Bcast");
    }
    return bytes;
}

std::optional<std::string> tree_reduce_bytes(MPI_Comm comm, std::string local, const merge_bytes_fn& merge,
                                             int root) {
    const int size = size_of(comm), v = relative(rank_of(comm), root, size);
    if (root < 0 || root >= size) throw std::invalid_argument("reduce: root " + std::to_string(root) + " out of range");
    std::string acc = std::move(local);
    for (int step = 1; step < size; step <<= 1) {
        if (v % (2 * step) == 0) {
            if (v + step >= size) continue;
            acc = or_abort(comm, [&] { return merge(acc, recv_bytes(comm, absolute(v + step, root, size))); });
        } else {
            or_abort(comm, [&] {
                send_bytes(comm, acc, absolute(v - step, root, size));
                return 0;
            });
            return std::nullopt;
        }
    }
    return acc;
}

// ---- moments: the exact two-stage merge (MATH.md §1) ---------------------------------

std::optional<moment_accumulator> reduce(const moment_accumulator& local, MPI_Comm comm, int root) {
    require_agreement(comm, agreement_fields(local), "moment accumulator reduction");
    const int size = size_of(comm), me = rank_of(comm);
    if (root < 0 || root >= size) throw std::invalid_argument("reduce: root " + std::to_string(root) + " out of range");
    const std::size_t p = local.dim() + local.classes();
    const int p_int = static_cast<int>(p);  // the accumulator checked P fits a BLAS int

    // Stage 1: n and the mean. The root folds (n_r, μ_r) with Chan's mean rule over a fixed
    // binary tree in rank order (the same rounding pattern as merging the states themselves)
    // and broadcasts the result, so every rank shifts by the very same μ.
    std::vector<double> mean_local(p, 0.0);
    if (!local.empty()) {
        const vector_t mx = local.mean_x();
        std::copy(mx.begin(), mx.end(), mean_local.begin());
        if (local.has_targets()) {
            const vector_t my = local.mean_y();
            std::copy(my.begin(), my.end(), mean_local.begin() + static_cast<std::ptrdiff_t>(local.dim()));
        }
    }
    const std::uint64_t n_local = local.n();
    std::vector<std::uint64_t> counts(me == root ? static_cast<std::size_t>(size) : 1);
    std::vector<double> means(me == root ? static_cast<std::size_t>(size) * p : 1);
    check(MPI_Gather(&n_local, 1, MPI_UINT64_T, counts.data(), 1, MPI_UINT64_T, root, comm), "MPI_Gather");
    check(MPI_Gather(mean_local.data(), p_int, MPI_DOUBLE, means.data(), p_int, MPI_DOUBLE, root, comm), "MPI_Gather");
    std::uint64_t n_total = 0;
    std::vector<double> mean(p, 0.0);
    if (me == root) {
        for (int step = 1; step < size; step <<= 1)
            for (int a = 0; a + step < size; a += 2 * step) {
                const int b = a + step;
                const std::uint64_t na = counts[a], nb = counts[b];
                double* ma = &means[static_cast<std::size_t>(a) * p];
                const double* mb = &means[static_cast<std::size_t>(b) * p];
                if (nb == 0) continue;
                if (na == 0) {
                    std::copy(mb, mb + p, ma);
                } else {
                    const double f = static_cast<double>(nb) / static_cast<double>(na + nb);
                    for (std::size_t i = 0; i < p; ++i) ma[i] += (mb[i] - ma[i]) * f;
                }
                counts[a] = na + nb;
            }
        n_total = counts[0];
        std::copy(means.begin(), means.begin() + static_cast<std::ptrdiff_t>(p), mean.begin());
    }
    check(MPI_Bcast(&n_total, 1, MPI_UINT64_T, root, comm), "MPI_Bcast");
    check(MPI_Bcast(mean.data(), p_int, MPI_DOUBLE, root, comm), "MPI_Bcast");

    // Stage 2: this rank's scatter shifted to the global mean, M_r + n_r d dᵀ with d = μ_r − μ,
    // packed (upper triangle, row by row), then summed over the fixed tree.
    const std::size_t packed_size = p * (p + 1) / 2;
    std::vector<double> packed(packed_size);
    {
        const matrix_t& m = local.scatter_upper();
        std::vector<double> d(p, 0.0);
        if (n_local > 0)
            for (std::size_t i = 0; i < p; ++i) d[i] = mean_local[i] - mean[i];
        const double nr = static_cast<double>(n_local);
        std::size_t k = 0;
        for (std::size_t i = 0; i < p; ++i) {
            const double w = nr * d[i];
            const double* row = &m(i, 0);
            for (std::size_t j = i; j < p; ++j) packed[k++] = row[j] + w * d[j];
        }
    }
    const int v = relative(me, root, size);
    std::vector<double> incoming;
    for (int step = 1; step < size; step <<= 1) {
        if (v % (2 * step) == 0) {
            if (v + step >= size) continue;
            const int src = absolute(v + step, root, size);
            incoming.resize(std::min(chunk_doubles, packed_size));
            for (std::size_t off = 0; off < packed_size; off += chunk_doubles) {
                const std::size_t count = std::min(chunk_doubles, packed_size - off);
                check(MPI_Recv(incoming.data(), static_cast<int>(count), MPI_DOUBLE, src, tag_scatter, comm,
                               MPI_STATUS_IGNORE),
                      "MPI_Recv");
                double* dst = packed.data() + off;
                for (std::size_t i = 0; i < count; ++i) dst[i] += incoming[i];
            }
        } else {
            const int dst = absolute(v - step, root, size);
            for (std::size_t off = 0; off < packed_size; off += chunk_doubles) {
                const std::size_t count = std::min(chunk_doubles, packed_size - off);
                check(MPI_Send(packed.data() + off, static_cast<int>(count), MPI_DOUBLE, dst, tag_scatter, comm),
                      "MPI_Send");
            }
            return std::nullopt;
        }
    }
    // Root: unpack the upper triangle row by row; the lower one stays zero, as in every
    // accumulator's own state (its updates and merges only ever write the upper triangle).
    matrix_t scatter = xt::zeros<double>({p, p});
    std::size_t k = 0;
    for (std::size_t i = 0; i < p; ++i) {
        double* row = &scatter(i, 0);
        for (std::size_t j = i; j < p; ++j) row[j] = packed[k++];
    }
    std::vector<double>().swap(packed);
    vector_t mean_z = vector_t::from_shape({p});
    std::copy(mean.begin(), mean.end(), mean_z.begin());
    if (n_total == 0) {
        mean_z.fill(0.0);
        scatter.fill(0.0);
    }
    return moment_accumulator::from_parts(local.options(), n_total, std::move(mean_z), std::move(scatter));
}

moment_accumulator all_reduce(const moment_accumulator& local, MPI_Comm comm) {
    return all_reduce_via_root(local, comm);
}

// ---- sketches and the tracker: a fixed tree of their own merges ------------------------

std::optional<frequent_directions> reduce(const frequent_directions& local, MPI_Comm comm, int root) {
    return tree_reduce(local, comm, root, "Frequent Directions reduction");
}
frequent_directions all_reduce(const frequent_directions& local, MPI_Comm comm) {
    return all_reduce_via_root(local, comm);
}

std::optional<nystrom_sketch> reduce(const nystrom_sketch& local, MPI_Comm comm, int root) {
    return tree_reduce(local, comm, root, "Nystrom sketch reduction");
}
nystrom_sketch all_reduce(const nystrom_sketch& local, MPI_Comm comm) { return all_reduce_via_root(local, comm); }

std::optional<alignment_tracker> reduce(const alignment_tracker& local, MPI_Comm comm, int root) {
    return tree_reduce(local, comm, root, "alignment tracker reduction");
}
alignment_tracker all_reduce(const alignment_tracker& local, MPI_Comm comm) {
    return all_reduce_via_root(local, comm);
}

}  // namespace recalign::dist

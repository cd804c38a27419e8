#include "route_state.hpp"

#include <algorithm>
#include <cstring>
#include <limits>
#include <stdexcept>
#include <vector>

#include "jitter_state.hpp"
#include "mpi_context.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/sketch/frequent_directions_ell.hpp"
#include "validate.hpp"

namespace recalign::cli {

// ---- route_state -----------------------------------------------------------------------

namespace {

template <class... F>
struct overloaded : F... {
    using F::operator()...;
};
template <class... F>
overloaded(F...) -> overloaded<F...>;

using route_variant = std::variant<moment_accumulator, frequent_directions, nystrom_sketch>;

route_variant make_route(const run_config& config) {
    const auto dim = static_cast<std::size_t>(config.dim);
    const centering c = static_cast<centering>(config.center);
    if (config.method == "exact") {
        // Labels go to the class statistics (D x C), not into a (D + C)² joint scatter.
        moment_options o;
        o.dim = dim;
        o.float32_kernels = config.float32_kernels;
        return moment_accumulator(o);
    }
    if (config.method == "fd") {
        frequent_directions_options o;
        o.dim = dim;
        o.ell = frequent_directions_default_ell(static_cast<std::size_t>(config.rank), dim);
        o.center = c;
        o.float32_kernels = config.float32_kernels;
        return frequent_directions(o);
    }
    return nystrom_sketch(nystrom_route_options(config));
}

// A nested sketch must be of this run's configuration (its own header says which kind).
// A Nyström state of either sketch a run of this configuration may hold (run_config::krylov:
// block Krylov with p = max(K, 10), or the historic K + 10 columns of subspace iteration, which states
// begun before block Krylov also hold) continues as it was begun.
bool either_sketch(const nystrom_sketch& s, const nystrom_sketch& fresh, const run_config&) {
    nystrom_options o = fresh.options();
    const bool krylov = s.options().blocks > 1;
    o.oversampling = std::min<std::size_t>(krylov ? std::max<std::size_t>(o.rank, 10) : 10, o.dim - o.rank);
    o.blocks = krylov ? s.options().blocks : 1;
    return s.config_hash() == nystrom_sketch(o).config_hash();
}
// An FD state begun with the historic ℓ = min(2K, D) (before frequent_directions_default_ell)
// continues with it.
bool either_sketch(const frequent_directions& s, const frequent_directions& fresh, const run_config& config) {
    frequent_directions_options o = fresh.options();
    o.ell = frequent_directions_legacy_ell(static_cast<std::size_t>(config.rank), o.dim);
    return s.config_hash() == frequent_directions(o).config_hash();
}
bool either_sketch(const moment_accumulator&, const moment_accumulator&, const run_config&) { return false; }

template <class Sketch>
Sketch load_sketch(const state_source& bytes, const Sketch& fresh, const run_config& config, const std::string& source) {
    Sketch s = bytes.framed<Sketch>(" (nested accumulator)");
    if (s.config_hash() != fresh.config_hash() && !either_sketch(s, fresh, config))
        throw file_error(source, checkpoint::header_bytes, "nested sketch disagrees with the run configuration");
    return s;
}

// The class statistics after the nested sketch, of this run's D and C.
class_moments load_classes(const state_source& bytes, const class_moments& fresh, const std::string& source) {
    if (!bytes.starts_with("RECALIGN"))
        throw file_error(source, checkpoint::header_bytes,
                         "class statistics in the layout of an older recalign (before class_moments): this "
                         "checkpoint cannot be continued or analysed by this version; run it again");
    class_moments c = bytes.framed<class_moments>(" (class statistics)");
    if (c.config_hash() != fresh.config_hash())
        throw file_error(source, checkpoint::header_bytes, "nested class statistics disagree with the run configuration");
    return c;
}

}  // namespace

nystrom_options nystrom_route_options(const run_config& config) {
    nystrom_options o;
    o.dim = static_cast<std::size_t>(config.dim);
    o.rank = static_cast<std::size_t>(config.rank);
    const bool krylov = config.krylov && config.passes > 1;
    o.oversampling = std::min<std::size_t>(krylov ? std::max<std::size_t>(o.rank, 10) : 10, o.dim - o.rank);
    o.blocks = krylov ? static_cast<std::size_t>(config.passes) : 1;
    o.probes = std::min<std::size_t>(10, o.dim);
    o.seed = config.seed;
    o.center = static_cast<centering>(config.center);
    o.float32_kernels = config.float32_kernels;
    o.test = config.test_matrix == "sparse" ? nystrom_test::sparse_signs : nystrom_test::automatic;
    return o;
}

route_state::route_state(const run_config& config) : config_(config), main_(make_route(config)) {
    if (config.classes)
        classes_.emplace(class_moments_options{static_cast<std::size_t>(config.dim), static_cast<std::size_t>(config.classes)});
}

void route_state::update(const io::source_batch& b, std::uint64_t pass) {
    unpark();
    // The class statistics first: their update validates the rows and the labels and changes
    // nothing on a refusal, so the pair keeps the strong guarantee.
    if (classes_ && pass == 0) classes_->update(b.view(), b.targets(), b.first_row);
    std::visit(overloaded{[&](moment_accumulator& m) {
                              // A joint scatter of an older checkpoint holds its own targets.
                              if (m.has_targets()) m.update(b.view(), b.targets(), b.first_row);
                              else m.update(b.view(), b.first_row);
                          },
                          [&](auto& sketch) { sketch.update(b.view(), b.first_row); }},
               main_);
}

void route_state::next_pass(const mpi_context& mpi) {
    unpark();
    auto* s = std::get_if<nystrom_sketch>(&main_);
    if (!s) return;
    if (!mpi.active()) {
        s->next_pass();
        return;
    }
    // The power-iteration basis of the whole range: rank 0 merges the ranks' states (this
    // pass's range, and the class statistics of pass 0) and starts the next pass; every rank
    // then reads its shard against rank 0's Q. Rank 0 keeps the merged class statistics, the
    // others start theirs empty (their rows are in rank 0's), so the final reduce counts each
    // row once. A merge of shards every rank loaded (hold_whole) is already whole on rank 0.
    if (!whole_) reduce(mpi);
    whole_ = false;
    std::string next;
    if (mpi.rank() == 0) {
        std::get<nystrom_sketch>(main_).next_pass();
        next = checkpoint::to_bytes(std::get<nystrom_sketch>(main_));
    }
    next = mpi.broadcast_bytes(std::move(next));
    if (mpi.rank() == 0) return;
    main_ = load_sketch(state_source(next, 0, "rank 0's next pass"), std::get<nystrom_sketch>(main_), config_,
                        "rank 0's next pass");
    if (classes_) classes_.emplace(classes_->options());
}

std::uint64_t route_state::passes_to_skip(std::uint64_t pass) {
    unpark();
    const auto* s = std::get_if<nystrom_sketch>(&main_);
    if (!s || !(config_.tolerance > 0.0) || pass + 1 >= config_.passes || s->n() == 0) return 0;
    nystrom_spectrum_options o;
    o.rank = static_cast<std::size_t>(config_.rank);
    const double e = nystrom_relative_error(*s, o);
    return e <= config_.tolerance ? config_.passes - 1 - pass : 0;
}

std::uint64_t route_state::sketch_passes() const {
    if (parked()) return parked_passes_;
    if (const auto* s = std::get_if<nystrom_sketch>(&main_)) return s->pass() + 1;
    return 1;
}

std::uint64_t route_state::n() const {
    if (parked()) return parked_n_;
    return std::visit([](const auto& a) { return a.n(); }, main_);
}

void route_state::merge(const stream_state& o) {
    const auto* other_ptr = dynamic_cast<const route_state*>(&o);
    if (!other_ptr) throw std::invalid_argument("cannot merge: the states are of different commands");
    const route_state& other = *other_ptr;
    if (const std::string d = config_.difference(other.config_, "this state", "the other"); !d.empty())
        throw std::invalid_argument("cannot merge: " + d);
    if (other.parked()) {  // (it may be *this: read before this one is changed)
        route_state whole(other.config_);
        whole.load(other.save(), "a parked sketch state");
        merge(whole);
        return;
    }
    unpark();
    std::visit([&](auto& a) { a.merge(std::get<std::decay_t<decltype(a)>>(other.main_)); }, main_);
    if (classes_.has_value() != other.classes_.has_value())
        throw std::invalid_argument("cannot merge: one state holds the labels in a joint (D + C)² scatter (a checkpoint "
                                    "of an older recalign), the other as class statistics");
    if (classes_) classes_->merge(*other.classes_);
}

// [u64 length][framed accumulator][class statistics, with labels]. An exact state loaded from
// a checkpoint of an older recalign (a framed joint scatter with the targets inside, starting
// with the checkpoint magic) keeps that layout.
std::string route_state::save() const { return bytes_of(*this); }

void route_state::save_to(state_sink& sink) const {
    if (parked()) return parked_save_to(sink);
    if (const auto* m = std::get_if<moment_accumulator>(&main_); m && !classes_) return sink.framed(*m);
    sink.part([&](state_sink& s) { std::visit([&](const auto& a) { s.framed(a); }, main_); });
    if (classes_) sink.framed(*classes_);
}

void route_state::load(const std::string& tagged, const std::string& source) {
    const std::string bytes = without_jitter_header(tagged);  // --from / merge of a jittered run
    load_from(state_source(bytes, loaded_at, source));
}

void route_state::refuse_verified(const state_source& src) {
    const std::string head = src.bytes(0, std::min<std::uint64_t>(src.size(), 8));
    if (head == "RAVERIFY" || head == "RAVERIF2" || head == "RAVERIF3" || head == "RAVERIF4" || head == "RAVERIF5" ||
        head == "RAMCVERI")  // verified_state (versions 1-5), monte_carlo_state
        throw file_error(src.name(), src.at(),
                         "this checkpoint holds a run with a verification pass (--verify, the default of sketch "
                         "routes), whose numbers come from passes over the data: resume it with its input "
                         "(--checkpoint FILE --resume; merged shards: with the whole input) to finish the passes, or, "
                         "when they are done, to print its results without reading anything. --from analyses the "
                         "checkpoint of a run made with --no-verify (the sketch alone), not this one");
}

void route_state::load_from(const state_source& src) {
    const std::string& source = src.name();
    refuse_verified(src);
    const std::string head = src.bytes(0, std::min<std::uint64_t>(src.size(), 8));
    // The configuration's fresh state (a parked state's main_ is gone): what the loaded one must match.
    std::optional<route_state> unparked;
    if (parked()) unparked.emplace(config_);
    const route_state& fresh = parked() ? *unparked : *this;
    auto forget_parked = [&] {
        parked_.reset();
        parked_bytes_ = parked_n_ = parked_passes_ = 0;
    };
    if (std::holds_alternative<moment_accumulator>(fresh.main_) && head == "RECALIGN") {
        moment_accumulator m = src.framed<moment_accumulator>(" (nested accumulator)");
        if (m.dim() != config_.dim || m.classes() != config_.classes)
            throw file_error(source, checkpoint::header_bytes, "nested accumulator disagrees with the run configuration");
        forget_parked();
        main_ = std::move(m);
        classes_.reset();  // none, or inside the joint scatter
        return;
    }
    if (src.size() < 8) throw file_error(source, checkpoint::header_bytes, "sketch state missing");
    source_reader r{src, "sketch state"};
    const state_source nested = r.part();
    route_variant loaded =
        std::visit([&](const auto& f) -> route_variant { return load_sketch(nested, f, config_, source); }, fresh.main_);
    std::optional<class_moments> classes;
    if (fresh.classes_) classes.emplace(load_classes(src.sub(r.pos, r.left()), *fresh.classes_, source));
    else if (r.left()) throw file_error(source, checkpoint::header_bytes, "unexpected bytes after the sketch");
    forget_parked();
    main_ = std::move(loaded);
    classes_ = std::move(classes);
    // FD's shrink precision is not saved in its state: the run's --precision says it.
    if (auto* fd = std::get_if<frequent_directions>(&main_)) fd->set_float32_kernels(config_.float32_kernels);
}

void route_state::reduce(const mpi_context& mpi) {
    if (!mpi.active()) return;
    unpark();
    if (const auto* m = std::get_if<moment_accumulator>(&main_)) {
        // The exact moments take the two-stage Chan merge (dist/mpi.hpp), then the class
        // statistics their own tree (both collective, in this order on every rank).
        std::optional<moment_accumulator> r = mpi.reduce(*m);
        std::optional<std::string> labels;
        if (classes_)
            labels = mpi.reduce_bytes(checkpoint::to_bytes(*classes_), [&](const std::string& lower, const std::string& upper) {
                class_moments a = load_classes(state_source(lower, 0, "rank state"), *classes_, "rank state");
                a.merge(load_classes(state_source(upper, 0, "rank state"), *classes_, "rank state"));
                return checkpoint::to_bytes(a);
            });
        if (r) main_ = std::move(*r);
        if (labels) classes_.emplace(load_classes(state_source(*labels, 0, "the ranks' merged state"), *classes_,
                                                     "the ranks' merged state"));
        return;
    }
    const run_config cfg = config_;
    std::optional<std::string> bytes = mpi.reduce_bytes(save(), [&](const std::string& lower, const std::string& upper) {
        route_state a(cfg), b(cfg);
        a.load(lower, "rank state");
        b.load(upper, "rank state");
        a.merge(b);
        return a.save();
    });
    if (bytes) load(*bytes, "the ranks' merged state");
}

parked_size parked_route_size(const run_config& config) {
    const long double d = static_cast<long double>(config.dim), rank = static_cast<long double>(config.rank);
    const long double classes = 8.0L * (d + 1.0L) * static_cast<long double>(config.classes);  // sums and counts
    long double held = 0.0L, written = 0.0L;  // doubles of the sketch
    if (config.method == "fd") {
        held = 2.0L * static_cast<long double>(frequent_directions_default_ell(static_cast<std::size_t>(config.rank),
                                                                              static_cast<std::size_t>(config.dim))) * d;
        written = held + d;  // and the mean
    } else if (config.method == "nystrom") {
        const nystrom_options o = nystrom_route_options(config);
        const long double s = static_cast<long double>(o.rank + o.oversampling);
        held = d * (s + static_cast<long double>(o.probes));
        // The mean; after a first pass Q, and block Krylov's kept blocks (KQ, KY).
        const long double q = config.passes > 1 ? s : 0.0L, kept = o.blocks > 1 ? 2.0L * static_cast<long double>(o.blocks) * s : 0.0L;
        written = held + d * (1.0L + q + kept);
    }
    parked_size z;
    z.freed = 8.0L * (held + d * rank) + classes;
    z.written = 8.0L * (written + d * rank) + classes + 1048576.0L;  // + the framing, generously
    return z;
}

namespace {
constexpr std::size_t parked_block = std::size_t(1) << 17;  // doubles written or read at a time (1 MiB)
}  // namespace

void route_state::park(const std::string& dir) {
    if (parked()) return;
    // save_to's bytes written to the file as they are made (no copy of the state in memory).
    state_sink measure;
    save_to(measure);
    const std::uint64_t bytes = measure.count();
    const std::size_t words = static_cast<std::size_t>((bytes + 7) / 8);
    auto file = std::make_shared<io::row_spill>(dir, words, 1);  // may throw: nothing changed
    std::vector<double> block(std::min(words, parked_block));
    std::size_t w0 = 0, filled = 0;  // bytes in `block`
    auto flush = [&] {
        const std::size_t n = (filled + 7) / 8;
        if (filled % 8) std::memset(reinterpret_cast<char*>(block.data()) + filled, 0, n * 8 - filled);  // padding
        if (n) file->write_rows(w0, n, block.data());
        w0 += n;
        filled = 0;
    };
    state_sink to_file([&](const char* p, std::size_t n) {
        while (n) {
            const std::size_t k = std::min(n, block.size() * 8 - filled);
            std::memcpy(reinterpret_cast<char*>(block.data()) + filled, p, k);
            filled += k;
            p += k;
            n -= k;
            if (filled == block.size() * 8) flush();
        }
    });
    save_to(to_file);
    flush();
    if (to_file.count() != bytes) throw std::logic_error("route_state: the state changed size as it was parked");
    parked_n_ = n();
    parked_passes_ = sketch_passes();
    parked_bytes_ = bytes;
    parked_ = std::move(file);
    std::visit([](auto& a) { [[maybe_unused]] const std::decay_t<decltype(a)> gone = std::move(a); }, main_);
    classes_.reset();
}

void route_state::parked_save_to(state_sink& sink) const {
    if (sink.measuring()) return sink.put(nullptr, static_cast<std::size_t>(parked_bytes_));  // counted only
    const std::size_t words = parked_->rows();
    std::vector<double> block(std::min(words, parked_block));
    for (std::size_t w0 = 0; w0 < words; w0 += parked_block) {
        const std::size_t n = std::min(parked_block, words - w0);
        parked_->read_rows(w0, n, block.data());
        sink.put(block.data(), static_cast<std::size_t>(std::min<std::uint64_t>(n * 8, parked_bytes_ - w0 * 8)));
    }
}

std::string route_state::parked_save() const {
    std::string bytes;
    bytes.reserve(static_cast<std::size_t>(parked_bytes_));
    state_sink sink([&bytes](const char* p, std::size_t n) { bytes.append(p, n); });
    parked_save_to(sink);
    return bytes;
}

void route_state::unpark() {
    if (!parked()) return;
    route_state back(config_);
    back.load(parked_save(), parked_->directory() + " (the parked sketch state)");
    back.whole_ = whole_;
    *this = std::move(back);
}

namespace {
void refuse_other_centering(const run_config& config, centering c) {
    const auto built = static_cast<centering>(config.center);
    if (config.method != "exact" && built != c)
        throw std::invalid_argument(std::string("this ") + config.method + " sketch holds the " + centering_name(built) +
                                    " second moment, not the " + centering_name(c) + " one (choose --center or " +
                                    "--no-center when it is built)");
}
}  // namespace

statistics finish_statistics(const route_state& s, centering c, bool second_moment, std::uint64_t extra) {
    return route_state::finish_route(s, c, second_moment, extra, true);
}

statistics finish_without_labels(const route_state& s, centering c) {
    return route_state::finish_route(s, c, true, 0, false);
}

statistics route_state::finish_route(const route_state& s, centering c, bool second_moment, std::uint64_t extra,
                                     bool with_labels) {
    if (s.parked()) {  // finished from a copy read back (the state itself stays on disk)
        route_state whole(s.config_);
        whole.load(s.save(), "a parked sketch state");
        return finish_route(whole, c, second_moment, extra, with_labels);
    }
    refuse_other_centering(s.config_, c);
    const class_moments* labels = with_labels && s.classes_ ? &*s.classes_ : nullptr;
    sketch_finish_options o;
    o.rank = static_cast<std::size_t>(s.config_.rank);
    return std::visit(overloaded{[&](const moment_accumulator& m) {
                                     exact_finish_options eo;
                                     eo.second_moment = second_moment;
                                     eo.solver = solver_memory(s.config_, extra);
                                     statistics st = finish(m, c, eo);
                                     if (!labels) return st;
                                     return make_statistics(std::move(st.spec), std::move(st.mean), labels->cross(c),
                                                            std::move(st.second_moment));
                                 },
                                 [&](const auto& sketch) { return finish(sketch, labels, o); }},
                      s.main_);
}

statistics finish_statistics(route_state&& s, centering c, std::uint64_t extra) {
    s.unpark();
    auto* m = std::get_if<moment_accumulator>(&s.main_);
    if (!m && !s.classes_) return finish_statistics(s, c, false, extra);  // a sketch: its k x D parts, nothing to gain
    if (!m) {  // a sketch with labels: the class means consumed as Sxy is formed (C x D each)
        refuse_other_centering(s.config_, c);
        sketch_finish_options o;
        o.rank = static_cast<std::size_t>(s.config_.rank);
        class_moments labels = std::move(*s.classes_);
        s.classes_.reset();
        return std::visit(overloaded{[](const moment_accumulator&) -> statistics {
                                         throw std::logic_error("finish_statistics: not a sketch");
                                     },
                                     [&](const auto& sketch) { return finish(sketch, std::move(labels), o); }},
                          s.main_);
    }
    // The estimate (require_memory) counts the accumulator, Sxx and the eigenvectors: with Sxx
    // formed in the accumulator's storage only one of the three is held when the solver starts,
    // so it may add two more (dsyevd's 2 D² workspace: 3 D x D at the peak, as estimated).
    exact_finish_options eo;
    eo.second_moment = false;
    eo.solver = solver_memory(s.config_, extra);
    const std::uint64_t two = checked_mul(checked_mul(s.config_.dim, s.config_.dim, "D x D"), 16, "D x D bytes");
    const std::uint64_t most = std::numeric_limits<std::uint64_t>::max();
    eo.solver.workspace_bytes = eo.solver.workspace_bytes > most - two ? most : eo.solver.workspace_bytes + two;
    statistics st = finish(std::move(*m), c, eo);
    if (!s.classes_) return st;
    return make_statistics(std::move(st.spec), std::move(st.mean), std::move(*s.classes_).cross(c));
}

spectrum finish_spectrum(route_state&& s, centering c) {
    s.unpark();
    if (auto* m = std::get_if<moment_accumulator>(&s.main_)) return exact_eigenvalues(std::move(*m), c);
    return finish_statistics(s, c, false).spec;
}

}  // namespace recalign::cli

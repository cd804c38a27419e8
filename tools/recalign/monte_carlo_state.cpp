#include "monte_carlo_state.hpp"

#include <cstring>
#include <stdexcept>

#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "mpi_context.hpp"

namespace recalign::cli {

namespace {
// Distinguishes this state from a verified state (RAVERIFY) in checkpoints.
constexpr char magic[8] = {'R', 'A', 'M', 'C', 'V', 'E', 'R', 'I'};


// ranges: the sketch pass's G Ω and Bs Ω; the verification pass needs only Qᵀ G Q and Bsᵀ Q.
monte_carlo_sketch make_sketch(const noise_spec& s, matrix_t test, corrupt_fn corrupt, bool ranges) {
    monte_carlo_sketch_options o;
    o.ranges = ranges;
    o.test = std::move(test);
    o.draws = s.draws;
    o.seed = s.seed;
    o.name = to_string(s);
    return monte_carlo_sketch(std::move(o), std::move(corrupt));
}
}  // namespace

monte_carlo_state::monte_carlo_state(const run_config& config, verify_plan plan, std::vector<noise_spec> noises,
                                     const image_shape& shape, std::size_t columns)
    : noises_(std::move(noises)), sketch_passes_(config.passes) {
    const auto dim = static_cast<std::size_t>(config.dim);
    for (const noise_spec& s : noises_) {
        corrupters_.push_back(make_corrupter(s, shape));
        // Ω from the noise's own seed: regenerated bit for bit on resume.
        sketches_.push_back(make_sketch(s, gaussian_test_matrix(dim, columns, s.seed), corrupters_.back(), true));
    }
    // The verification basis: the plan's, extended by each noise's Ritz space (G Ω, Bs Ω, Bsᵀ Ω).
    verification_basis base = std::move(plan.basis);
    plan.basis = [this, base](const statistics& s, const std::vector<patch_blocks>& blocks,
                              restricted_statistics* previous) {
        matrix_t q = base(s, blocks, previous);
        for (const monte_carlo_sketch& m : sketches_) q = monte_carlo_ritz_basis(q, m.products());
        pending_basis_ = q;
        return q;
    };
    inner_.emplace(config, std::move(plan));
}

void monte_carlo_state::update(const io::source_batch& b, std::uint64_t pass) {
    // Everything that can refuse the batch first: each Monte-Carlo state reads and corrupts it
    // (prepare: nothing changes), the inner state validates the rows and labels and changes
    // nothing on a refusal; then the Monte-Carlo sums are added in place (commit cannot fail).
    const bool sketching = pass == 0, verifying = pass >= sketch_passes_;
    if (verifying && on_basis_.size() != noises_.size())
        throw std::logic_error("monte_carlo_state: a verification pass without its basis");
    std::vector<monte_carlo_sketch>& states = sketching ? sketches_ : on_basis_;
    std::vector<monte_carlo_batch> prepared;
    if (sketching || verifying)
        for (const monte_carlo_sketch& m : states) prepared.push_back(m.prepare(b.view(), b.first_row));
    inner_->update(b, pass);
    for (std::size_t i = 0; i < prepared.size(); ++i) states[i].commit(prepared[i]);
}

void monte_carlo_state::next_pass(const mpi_context& mpi) {
    // denoise refuses Monte-Carlo noises on sketch routes under mpirun (their sketches would
    // have to be merged on rank 0 before the basis is built).
    if (mpi.active()) throw std::logic_error("monte_carlo_state: not under mpirun");
    inner_->next_pass(mpi);
    ++pass_;
    if (pass_ < sketch_passes_) return;
    // The inner state has just asked the plan for this verification pass's basis
    // (pending_basis_; with --refine, every further pass has a new one): products on it.
    on_basis_.clear();
    for (std::size_t i = 0; i < noises_.size(); ++i)
        on_basis_.push_back(make_sketch(noises_[i], pending_basis_, corrupters_[i], false));
}

monte_carlo_products monte_carlo_state::on_basis(std::size_t i) const {
    if (i >= on_basis_.size()) throw std::logic_error("monte_carlo_state: no verification pass was run");
    return on_basis_[i].products();
}

// [magic][u64 pass][verified state][u64 m][m sketches][u64 m' (0 or m)][m' products on Q]
std::string monte_carlo_state::save() const { return bytes_of(*this); }

void monte_carlo_state::save_to(state_sink& out) const {
    out.put(magic, 8);
    out.u64(pass_);
    out.part([&](state_sink& o) { inner_->save_to(o); });
    out.u64(sketches_.size());
    for (const monte_carlo_sketch& m : sketches_) out.part([&](state_sink& o) { o.framed(m); });
    out.u64(on_basis_.size());
    for (const monte_carlo_sketch& m : on_basis_) out.part([&](state_sink& o) { o.framed(m); });
}

void monte_carlo_state::load(const std::string& bytes, const std::string& source) {
    load_from(state_source(bytes, loaded_at, source));
}

void monte_carlo_state::load_from(const state_source& src) {
    loaded_at = src.at();
    const std::string& source = src.name();
    if (!src.starts_with(std::string_view(magic, 8)))
        throw file_error(source, checkpoint::header_bytes,
                         "this checkpoint holds no Monte-Carlo sketches (written by a run with other noises)");
    source_reader r{src, "Monte-Carlo sketch state", 8};
    const std::uint64_t pass = r.u64();
    const state_source inner = r.part();
    auto other_noises = [&] {
        return file_error(source, checkpoint::header_bytes, "the checkpoint's Monte-Carlo sketches are of other noises");
    };
    if (r.u64() != sketches_.size()) throw other_noises();
    std::vector<monte_carlo_sketch> sketches;
    for (std::size_t i = 0; i < sketches_.size(); ++i) {
        monte_carlo_sketch m = r.part().framed<monte_carlo_sketch>(" (Monte-Carlo sketch)");
        if (m.config_hash() != sketches_[i].config_hash()) throw other_noises();
        m.set_corrupter(corrupters_[i]);
        sketches.push_back(std::move(m));
    }
    const std::uint64_t verifying = r.u64();
    if (verifying != 0 && verifying != sketches_.size()) throw other_noises();
    std::vector<monte_carlo_sketch> on_basis;
    for (std::size_t i = 0; i < verifying; ++i) {
        monte_carlo_sketch m = r.part().framed<monte_carlo_sketch>(" (Monte-Carlo verification pass)");
        const monte_carlo_sketch_options& o = m.options();
        if (o.name != to_string(noises_[i]) || o.draws != noises_[i].draws || o.seed != noises_[i].seed || o.ranges ||
            m.dim() != sketches_[i].dim())
            throw other_noises();
        m.set_corrupter(corrupters_[i]);
        on_basis.push_back(std::move(m));
    }
    if (r.left()) throw file_error(source, checkpoint::header_bytes, "unexpected bytes after the Monte-Carlo sketch state");
    if ((verifying != 0) != (pass >= sketch_passes_))
        throw file_error(source, checkpoint::header_bytes, "the Monte-Carlo sketch state is of another pass");
    inner_->load_from(inner);
    sketches_ = std::move(sketches);
    on_basis_ = std::move(on_basis);
    pass_ = pass;
}

void monte_carlo_state::reduce(const mpi_context& mpi) {
    // The commands refuse the verification pass under mpirun (sketch_route.cpp), and a sketch
    // route's denoise always verifies.
    inner_->reduce(mpi);
}

void monte_carlo_state::merge(const stream_state&) {
    throw std::invalid_argument("cannot merge runs with a verification pass: each shard verified its own sketch's "
                                "subspaces");
}

}  // namespace recalign::cli

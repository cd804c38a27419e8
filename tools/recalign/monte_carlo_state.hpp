// denoise on a sketch route with Monte-Carlo noises (MATH.md §7 "Other noises"): the
// verified state (sketch, patch blocks, verification pass) plus, per Monte-Carlo noise, a
// Monte-Carlo sketch (G Ω, Bs Ω, Bsᵀ Ω) in the first sketch pass and the same products on the
// verification basis Q in the verification pass. The corruptions are drawn per (seed, row, draw)
// in both passes, so the verification pass sees the very samples the sketch did, and a resumed
// run the ones the uninterrupted run would have drawn. Every pass goes through the driver.
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "recalign/align/monte_carlo_sketch.hpp"
#include "verified_state.hpp"

namespace recalign::cli {

class monte_carlo_state final : public stream_state {
public:
    // `noises`: the Monte-Carlo noises (draws > 0), `shape` the images' geometry, `columns` l of
    // each sketch's test matrix. The plan's basis is extended with each noise's Ritz space
    // (monte_carlo_ritz_basis) before the verification pass.
    monte_carlo_state(const run_config& config, verify_plan plan, std::vector<noise_spec> noises,
                      const image_shape& shape, std::size_t columns);
    // The plan's basis function refers to this object: neither copied nor moved.
    monte_carlo_state(const monte_carlo_state&) = delete;
    monte_carlo_state& operator=(const monte_carlo_state&) = delete;

    std::uint64_t passes() const override { return inner_->passes(); }
    void update(const io::source_batch& b, std::uint64_t pass) override;
    void next_pass(const mpi_context& mpi) override;
    // --tolerance: the inner state's skipped sketch passes count as read here too.
    std::uint64_t passes_to_skip(std::uint64_t pass) override {
        const std::uint64_t k = inner_->passes_to_skip(pass);
        pass_ += k;
        return k;
    }
    // A stopped refinement reads nothing (jitter_state had the bug: a wrapper that dropped it
    // read one more whole pass after the stop).
    bool reads(std::uint64_t pass) const override { return inner_->reads(pass); }
    std::uint64_t passes_read() const override { return inner_->passes_read(); }
    // hold_whole is not forwarded (stays false): this state's own Monte-Carlo sketches would
    // still be merged from every rank (the verification pass is refused under mpirun anyway).
    std::uint64_t n() const override { return inner_->n(); }
    std::string save() const override;
    void load(const std::string& bytes, const std::string& source) override;
    void save_to(state_sink& sink) const override;
    void load_from(const state_source& src) override;
    void reduce(const mpi_context& mpi) override;
    void merge(const stream_state& other) override;

    const verified_state& verified() const { return *inner_; }
    verified_state& verified() { return *inner_; }
    // After the run: the Monte-Carlo products of noise i on the verification basis.
    monte_carlo_products on_basis(std::size_t i) const;

private:
    std::optional<verified_state> inner_;
    std::vector<noise_spec> noises_;
    std::vector<corrupt_fn> corrupters_;
    std::uint64_t sketch_passes_ = 1;
    std::uint64_t pass_ = 0;
    std::vector<monte_carlo_sketch> sketches_;  // first sketch pass, Ω random
    std::vector<monte_carlo_sketch> on_basis_;  // verification pass, Ω = Q
    matrix_t pending_basis_;                    // Q, as the plan's basis function returned it
};

}  // namespace recalign::cli

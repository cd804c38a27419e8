// The state of a sketch route with verification (MATH.md §7, issue 14): the route's sketch
// (and class statistics) and, for patch-masking noises, the exact patch blocks, all in the
// sketch passes; then one or more verification passes, each accumulating the restricted
// moments of a basis computed from what the previous passes found (restricted_moments).
// Every pass goes through the driver, so checkpoints, resume and signals work in every pass.
// Under mpirun, rank 0 merges the ranks' sketches and blocks before the first verification
// pass and computes every basis; each rank verifies its own shard on that basis, and the
// restricted moments are merged at the end (bit-identical for a fixed rank count). Shards
// merged with `merge` add up their sketch passes; the merged checkpoint, resumed with the
// whole input, runs the verification passes on the merged sketch (driver.cpp), in one process
// or under mpirun (every rank loads it; hold_whole).
#pragma once

#include <cstdint>
#include <functional>
#include <limits>
#include <optional>
#include <string>
#include <vector>

#include "recalign/align/incremental_refinement.hpp"
#include "recalign/align/patch_blocks.hpp"
#include "recalign/align/restricted_moments.hpp"
#include "route_state.hpp"

namespace recalign::cli {

// The first bytes of a verified state's checkpoint bytes (a route state's start otherwise):
// version 1 (full refinement passes), version 2 (incremental refinement; both still loaded)
// version 3 (version 2 and the passes the adaptive stop skipped), version 4 (and the stop's
// estimate) and version 5 (and what the statistics know of Vᵀ Bd V); all still loaded.
inline constexpr char verified_magic[] = "RAVERIFY";
inline constexpr char verified_magic_v2[] = "RAVERIF2";
inline constexpr char verified_magic_v3[] = "RAVERIF3";
inline constexpr char verified_magic_v4[] = "RAVERIF4";
inline constexpr char verified_magic_v5[] = "RAVERIF5";
// Whether checkpoint bytes hold a verified state (any version).
inline bool verified_bytes(const std::string& s) {
    for (const char* m : {verified_magic, verified_magic_v2, verified_magic_v3, verified_magic_v4, verified_magic_v5})
        if (s.compare(0, 8, m) == 0) return true;
    return false;
}

// What a verification pass runs on: a basis from the finished sketch statistics, the patch
// blocks and the previous verification pass (null for the first; the basis may add its products in place).
using verification_basis = std::function<matrix_t(const statistics& sketch, const std::vector<patch_blocks>& blocks,
                                                  restricted_statistics* previous)>;

// Incremental refinement (denoise, MATH.md §7): from the finished previous pass (its
// statistics of [R, T] completed), the restart R and the new directions T of the next one, or
// `stopped` when the estimate from its curves' change since `before` and the previous restart's
// change (`previous_change`, NaN: none) is below the stopping rule's.
using verification_restart = std::function<refinement_step(const statistics& sketch,
                                                           const std::vector<patch_blocks>& blocks,
                                                           restricted_statistics& previous, const vector_t* before,
                                                           double previous_change)>;

struct verify_plan {
    centering center = centering::uncentered;
    std::vector<patch_blocks_options> blocks;  // accumulated in the first sketch pass
    std::size_t passes = 1;                    // verification passes after the sketch's (a budget with `restart`)
    verification_basis basis;                  // the first verification pass's (and, without restart, every one's)
    verification_restart restart;              // optional: the refinement passes read only new directions
    // Optional adaptive stop: after a verification pass that is not the last, true skips the
    // rest (that pass is the result). Asked on rank 0 of the merged pass, like `restart`.
    std::function<bool(const statistics& sketch, const std::vector<patch_blocks>& blocks,
                       const restricted_statistics& pass)> done;
    // Once the sketch is finished, its state and, during each verification pass, its D x rank
    // basis wait in unlinked files in io::spill_directory() (route_state::park; docs/benchmarks-log.md
    // "mem8"): denoise with refinement passes, whose spill directory is checked before reading.
    bool park = false;
    // Whether `basis`, `restart` or `done` read the finished sketch's cross statistics (Sxy:
    // tradeoff's orth([U, Sxy])). False: the sketch is finished without them, and the labels
    // reach the analyses through the verification pass alone (verify_own_basis: align's curve).
    bool basis_reads_labels = true;
};

// How the refinement passes went (incremental refinement): passes run, why they stopped.
struct refinement_report {
    std::uint64_t budget = 0, passes = 0;
    bool converged = false;  // stopped by the rule (else: the budget was spent)
    double change = std::numeric_limits<double>::quiet_NaN();  // the last change compared
    double estimate = std::numeric_limits<double>::quiet_NaN();  // refinement_estimate of the last restart
    std::vector<double> changes, estimates;  // every restart's, in turn (the last: change, estimate)
};

class verified_state final : public stream_state {
public:
    verified_state(const run_config& config, verify_plan plan);

    std::uint64_t passes() const override { return route_.passes() + plan_.passes; }
    void update(const io::source_batch& b, std::uint64_t pass) override;
    void next_pass(const mpi_context& mpi) override;
    std::uint64_t passes_to_skip(std::uint64_t pass) override;
    bool reads(std::uint64_t pass) const override { return !(stopped_ && pass >= route_.passes()); }
    std::uint64_t sketch_passes() const { return route_.sketch_passes(); }
    // Verification passes run: the plan's, less those the adaptive stop skipped (this process).
    std::uint64_t verification_passes() const { return plan_.passes - skipped_; }
    std::uint64_t passes_read() const override { return route_.passes() + verification_passes(); }
    std::uint64_t n() const override { return route_.n(); }
    std::string save() const override;
    void load(const std::string& bytes, const std::string& source) override;
    void save_to(state_sink& sink) const override;
    void load_from(const state_source& src) override;
    void reduce(const mpi_context& mpi) override;
    // Shards: the sketch passes merged, the shards' own verification passes dropped; the
    // result waits at the end of its sketch passes (resume it with the whole input).
    void merge(const stream_state& other) override;
    // A merge of verified shards resumed under mpirun (every rank loaded it): rank 0's sketch
    // and blocks are the whole range's; the others drop theirs at the next pass boundary.
    bool hold_whole() override;
    // `merge`: a state read from checkpoint bytes alone (its patch blocks say their geometry).
    static verified_state for_merge(const run_config& config, const std::string& bytes, const std::string& source);

    // After the run: the sketch's statistics, the blocks, the last verification pass.
    // The sketch is finished once, when its passes end, and kept (D x rank): each finish of a
    // Nyström sketch holds ~4 D x (rank + 10) temporaries, which every refinement step and the
    // analyses would otherwise add to the verification pass they hold (docs/benchmarks-log.md).
    const statistics& sketch() const;
    // A copy of it without the D x rank basis (the eigenvalues, error estimates, mean, Sxy).
    statistics sketch_without_basis() const;
    const std::vector<patch_blocks>& blocks() const noexcept { return blocks_; }
    restricted_statistics verified() const;
    // The same, moved out of the state (no copy of V and Sxx V; the state holds no pass after).
    restricted_statistics take_verified();
    // Wall seconds of each pass this process ran, up to now (a resumed run: 0 for the passes
    // done before; the pass it resumed in counts from the resume): for docs/benchmarks-log.md.
    std::vector<double> pass_seconds() const;
    refinement_report refinement() const;

private:
    void reduce_blocks(const mpi_context& mpi);  // collective: the ranks' blocks merged on rank 0
    void reduce_pass(const mpi_context& mpi);    // collective: the ranks' verification pass on rank 0

    route_state route_;
    verify_plan plan_;
    std::vector<patch_blocks> blocks_;
    std::optional<restricted_moments> pass_state_;  // during and after the verification passes
    // Incremental refinement (rank 0): what is known of the current pass's [R, T] before it
    // reads T; the finished statistics when the rule stopped the passes; the last curves.
    std::optional<refinement_pass> next_;
    std::optional<restricted_statistics> final_;
    vector_t curves_;
    std::uint64_t refined_ = 0;  // refinement passes started
    double change_ = std::numeric_limits<double>::quiet_NaN();
    double estimate_ = std::numeric_limits<double>::quiet_NaN();  // the last restart's refinement_estimate
    vector_t changes_, estimates_;  // every restart's change and estimate, in turn
    bool stopped_ = false;
    bool counted_ = false;  // the passes skipped after the stop are in skipped_
    std::uint64_t planned_ = 0;  // verification passes the checkpoint is for (0: unknown, version 1)
    mutable std::optional<statistics> finished_;    // sketch(), of route_ as it is now
    // plan_.park: finished_'s basis on disk during a verification pass (its spec.basis empty
    // meanwhile; sketch() reads it back). Written once per finish.
    mutable std::shared_ptr<io::row_spill> parked_basis_;
    mutable bool basis_parked_ = false;
    const statistics& finished() const;  // finished_, made when missing, its basis wherever it is
    statistics finish_sketch(const route_state& route) const;  // with or without Sxy, as the plan reads
    void forget_sketch();                // finished_ and its parked basis, of a state that changed
    std::uint64_t pass_ = 0;                        // the current pass
    std::size_t classes_ = 0;
    std::vector<double> marks_;  // steady-clock seconds at the first batch of each pass
    bool adopt_blocks_ = false;  // for_merge: load takes the checkpoint's blocks as they are
    bool whole_ = false;         // hold_whole, until the next pass boundary
    std::uint64_t skipped_ = 0;  // verification passes skipped by plan_.done
};

}  // namespace recalign::cli

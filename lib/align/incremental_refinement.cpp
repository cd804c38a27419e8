#include "recalign/align/incremental_refinement.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>

#include "recalign/align/sketch_denoising.hpp"
#include "recalign/align/verification.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/spectral/eigen.hpp"
#include "congruence.hpp"
#include "fresh_matrix.hpp"

namespace recalign {

namespace {
// A D x e matrix to an unlinked file in `dir` (io::row_spill), and back.
std::shared_ptr<const io::row_spill> stored(const std::string& dir, const matrix_t& x) {
    auto f = std::make_shared<io::row_spill>(dir, x.shape(0), x.shape(1));
    if (x.size()) f->write_rows(0, x.shape(0), x.data());  // an empty matrix's data() may be null
    return f;
}
matrix_t read_back(const io::row_spill& f) {
    matrix_t x = detail::fresh_matrix(f.rows(), f.cols());
    if (x.size()) f.read_rows(0, f.rows(), x.data());
    return x;
}
}  // namespace

std::size_t refinement_pass::k() const noexcept { return spilled() ? stored_basis->cols() : known.basis.shape(1); }

std::size_t refinement_pass::dim() const noexcept { return spilled() ? stored_basis->rows() : known.basis.shape(0); }

matrix_t refinement_pass::fresh() const {
    const std::size_t d = dim(), m = k(), b = m - carried;
    matrix_t t = detail::fresh_zeros(d, b);
    if (!spilled()) {
        for (std::size_t i = 0; i < d && b; ++i) std::copy(&known.basis(i, carried), &known.basis(i, 0) + m, &t(i, 0));
        return t;
    }
    constexpr std::size_t rows = 256;
    std::vector<double> block(std::min(d, rows) * m);
    for (std::size_t r0 = 0; r0 < d && b; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        stored_basis->read_rows(r0, rb, block.data());
        for (std::size_t i = 0; i < rb; ++i)
            std::copy(block.data() + i * m + carried, block.data() + (i + 1) * m, &t(r0 + i, 0));
    }
    return t;
}

void refinement_pass::spill(const std::string& dir) {
    if (spilled()) return;
    std::shared_ptr<const io::row_spill> b = stored(dir, known.basis);  // may throw: nothing changed
    std::shared_ptr<const io::row_spill> s = known.sv_stored ? known.sv_stored : stored(dir, known.sv);
    stored_basis = std::move(b);
    known.sv_stored = std::move(s);
    known.basis = matrix_t();
    known.sv = matrix_t();
}

void refinement_pass::restore() {
    if (!spilled()) return;
    known.basis = read_back(*stored_basis);  // may throw: nothing changed
    stored_basis.reset();
}

namespace {
// The number of leading Ritz vectors the restart lays out right after U: min(count, kept) per
// masking noise. The previous restart laid out its own the same way, so in the pass that read
// it they are Q's columns r .. r + previous_tops (when a column was dependent and dropped, the
// block holds a neighbouring direction instead: still one of span Q, so every number stays
// exact; only the convergence could differ).
std::size_t previous_tops(const std::vector<matrix_t>& ritz, std::size_t count) {
    std::size_t p = 0;
    for (const matrix_t& w : ritz) p += std::min(count, w.shape(1));
    return p;
}

// The statistics of the leading k Ritz vectors of `v` (in the pass's coordinates: the restart
// forms the pass's products first): the leading blocks of its exact products, so what
// refinement_residuals reads of them is the same bits, without holding every mask's whole
// K x K results while the stop is judged (about 30 MB a mask at the demo's m = 1,216).
ritz_denoising_result leading_ritz(const ritz_denoising_result& v, std::size_t k) {
    const restricted_statistics& s = v.refined;
    if (!s.in_coordinates()) throw std::logic_error("leading_ritz: a Ritz step not in the pass's coordinates");
    k = std::min({k, s.coords.shape(1), s.vsv.shape(0)});
    const auto lead = [k](const matrix_t& x) {
        return x.size() ? matrix_t(xt::view(x, xt::range(0, k), xt::range(0, k))) : matrix_t();
    };
    ritz_denoising_result out;
    out.subspace.eigenvalues = xt::view(v.subspace.eigenvalues, xt::range(0, std::min(k, v.subspace.eigenvalues.size())));
    out.subspace.rank_g = v.subspace.rank_g;
    out.subspace.dropped = v.subspace.dropped;
    out.subspace.informative = std::min(k, v.subspace.informative);
    out.subspace.status = v.subspace.status;
    restricted_statistics& r = out.refined;
    r.center = s.center;
    r.n = s.n;
    r.frame = s.frame;
    r.frame_dim = s.frame_dim;
    r.coords = xt::view(s.coords, xt::all(), xt::range(0, k));
    r.vsv = lead(s.vsv);
    r.gram = lead(s.gram);
    r.svsv = lead(s.svsv);
    if (s.cross) {
        r.cross = *s.cross;
        r.cross->sxy = xt::view(s.cross->sxy, xt::range(0, k), xt::all());
    }
    return out;
}

// m x e coordinates as one matrix (the columns of each part in turn; e may be 0).
matrix_t side_by_side(std::size_t m, const std::vector<matrix_t>& parts) {
    std::size_t e = 0;
    for (const matrix_t& x : parts) e += x.shape(1);
    matrix_t out = xt::zeros<double>({m, e});
    for (std::size_t c0 = 0, i = 0; i < parts.size(); c0 += parts[i].shape(1), ++i)
        for (std::size_t p = 0; p < m; ++p)
            for (std::size_t j = 0; j < parts[i].shape(1); ++j) out(p, c0 + j) = parts[i](p, j);
    return out;
}

// How many of the first r rows of C's last columns (m x e) are exactly zero, as
// restart_coordinates makes them (the columns after U are projected off U's unit coordinate
// vectors, exact in floating point): Q's first r columns (U) then add nothing to Q C's last
// columns, and the products below skip them (a fifth of the rotation's flops at 224x224x3,
// docs/benchmarks-log.md "time9"). r or 0: any other C is multiplied in full.
std::size_t zero_leading_rows(const matrix_t& cn, std::size_t r) {
    for (std::size_t i = 0; i < r * cn.shape(1); ++i)
        if (cn.data()[i] != 0.0) return 0;
    return r;
}

// How [Q C, 0] (D x width, width >= a = C's columns) is formed from Q (D x m), a block of rows
// at a time: C's first r columns are E_r (orthonormal_extension keeps them bit for bit): Q's
// first r columns, kept as they are; only the other a − r (cn) are multiplied, without the
// leading rows of cn that are zero (z).
struct rotation {
    matrix_t cn;
    std::size_t m = 0, r = 0, a = 0, z = 0, width = 0;
};
rotation rotation_of(const matrix_t& c, std::size_t m, std::size_t r, std::size_t width) {
    const std::size_t a = c.shape(1), e = a - r;
    if (c.shape(0) != m || r > a || width < a)
        throw std::invalid_argument("denoising_restart: the rotation does not fit the pass's basis");
    rotation rot;
    rot.cn = xt::zeros<double>({m, e});
    for (std::size_t p = 0; p < m && e; ++p) std::copy(&c(p, 0) + r, &c(p, 0) + a, &rot.cn(p, 0));
    rot.z = zero_leading_rows(rot.cn, r);
    rot.m = m;
    rot.r = r;
    rot.a = a;
    rot.width = width;
    return rot;
}
// rb rows of [Q C, 0] (row stride width) from the same rows of Q (row stride m; `out` may be
// `src` itself when width == m), through the scratch t.
void rotate_rows(const rotation& rot, std::size_t rb, const double* src, double* out, std::vector<double>& t) {
    const std::size_t m = rot.m, e = rot.a - rot.r, z = rot.z;
    t.resize(rb * e);
    if (e) blas::gemm_nn(rb, e, m - z, 1.0, src + z, m, rot.cn.data() + z * e, e, 0.0, t.data(), e);
    for (std::size_t i = 0; i < rb; ++i) {
        double* row = out + i * rot.width;
        if (row != src + i * m && rot.r) std::copy(src + i * m, src + i * m + rot.r, row);
        std::copy(t.data() + i * e, t.data() + (i + 1) * e, row + rot.r);
        std::fill(row + rot.a, row + rot.width, 0.0);
    }
}

// [Q C, 0] from Q in memory (consumed), in Q's own storage when width == m (no second D x a);
// otherwise Q's rows are released as they are read, so Q and the wider result are not both
// resident.
matrix_t rotated_rows(matrix_t&& q, const matrix_t& c, std::size_t r, std::size_t width) {
    const std::size_t d = q.shape(0), m = q.shape(1);
    const rotation rot = rotation_of(c, m, r, width);
    const bool in_place = width == m;
    matrix_t out;
    if (in_place) out = std::move(q);
    else out = detail::fresh_matrix(d, width);  // every element written below: no page touched before its row
    const double* src = in_place ? out.data() : q.data();
    // 1,024 rows a product: C's part (5.9 MB at the demo's widths) is packed once per product,
    // a tenth less time than 256 rows there (docs/benchmarks-log.md, the forty-first session);
    // the same bits as the 256-row grid of a view's reads (io/spill.hpp): each element sums over
    // m alike, and OpenBLAS rounds otherwise only the rows past a multiple of 8 in a product,
    // which on both grids are D's last D mod 8.
    constexpr std::size_t rows = 1024;
    std::vector<double> t;
    for (std::size_t r0 = 0; r0 < d; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        rotate_rows(rot, rb, src + r0 * m, out.data() + r0 * width, t);
        if (!in_place) detail::release_pages(q.data(), q.data() + (r0 + rb) * m);
    }
    q = matrix_t();
    return out;
}
// The same for Q on disk (Sxx Q of a completed refinement pass): a view of Q's file whose rows
// are rotated as they are read (io::row_spill's map; complete_pass reads it once), so Sxx R is
// never written (1.5 GB a restart at 224x224x3, and read back) and the restart makes no file.
std::shared_ptr<const io::row_spill> rotated_view(std::shared_ptr<const io::row_spill> q, const matrix_t& c,
                                                  std::size_t r, std::size_t width) {
    auto rot = std::make_shared<const rotation>(rotation_of(c, q->cols(), r, width));
    return std::make_shared<const io::row_spill>(std::move(q), width,
                                                 [rot](std::size_t n, const double* src, double* dst) {
                                                     std::vector<double> t;
                                                     rotate_rows(*rot, n, src, dst, t);
                                                 });
}

// The first `cols` columns of q (consumed), its rows released as they are copied, so q and the
// narrower result are not both resident (at 224x224x3 a restart that drops a converged clean
// residual would otherwise hold two D x 1,216 bases: +1.4 GB, docs/benchmarks-log.md "Quiet rerun of the
// eighth session"). The same bits as leading_columns_of.
matrix_t leading_columns_released(matrix_t&& q, std::size_t cols) {
    const std::size_t d = q.shape(0), w = q.shape(1);
    if (cols > w) throw std::invalid_argument("leading_columns_of: more columns than the matrix has");
    matrix_t out = detail::fresh_matrix(d, cols);
    constexpr std::size_t rows = 256;
    for (std::size_t r0 = 0; r0 < d && cols; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        for (std::size_t i = r0; i < r0 + rb; ++i) std::copy(q.data() + i * w, q.data() + i * w + cols, out.data() + i * cols);
        detail::release_pages(q.data(), q.data() + (r0 + rb) * w);
    }
    q = matrix_t();
    return out;
}

}  // namespace

matrix_t restart_coordinates(std::size_t m, std::size_t r, const std::vector<matrix_t>& ritz, std::size_t count,
                             std::size_t previous) {
    for (const matrix_t& w : ritz)
        if (w.shape(0) != m) throw std::invalid_argument("restart_coordinates: Ritz coordinates of another basis");
    if (r > m) throw std::invalid_argument("restart_coordinates: the sketch's rank exceeds the basis");
    matrix_t c = xt::zeros<double>({m, r});
    for (std::size_t j = 0; j < r; ++j) c(j, j) = 1.0;
    // In stages (orthonormal_extension mixes the columns it adds, never earlier ones): the
    // leading r + Σ tops columns span exactly U and the tops, the next restart's P block.
    std::vector<matrix_t> tops, rest;
    for (const matrix_t& w : ritz) {
        const std::size_t k = std::min(count, w.shape(1));
        tops.push_back(xt::view(w, xt::all(), xt::range(0, k)));
        rest.push_back(xt::view(w, xt::all(), xt::range(k, w.shape(1))));
    }
    c = orthonormal_extension(c, side_by_side(m, tops));
    if (previous > 0 && r + previous <= m) {  // the previous pass's tops: Q's columns r .. r + previous
        matrix_t e = xt::zeros<double>({m, previous});
        for (std::size_t j = 0; j < previous; ++j) e(r + j, j) = 1.0;
        c = orthonormal_extension(c, e);
    }
    return orthonormal_extension(c, side_by_side(m, rest));
}

refinement_step denoising_restart(const spectrum& sk, restricted_statistics& pass, const std::vector<noise_spec>& noises,
                                  const std::vector<const patch_blocks*>& blocks, const refinement_options& options,
                                  const vector_t* before, double previous_change) {
    const std::size_t d = pass.dim(), m = pass.k(), r = sk.rank();
    const double rel_tol = options.alignment.rel_tol;
    if (pass.in_coordinates() || sk.dim != d || sk.n != pass.n || sk.center != pass.center ||
        blocks.size() != noises.size() || r > m || sk.basis.shape(0) != d)
        throw std::invalid_argument("denoising_restart: the sketch and the verification pass are not of the same data");
    for (std::size_t i = 0; i < d; ++i)
        if (r && std::memcmp(&pass.basis(i, 0), &sk.basis(i, 0), r * sizeof(double)) != 0)
            throw std::invalid_argument("denoising_restart: the verification pass's basis does not start with the sketch's");
    pass.products();
    // The preconditioner's factors, formed at the first restart and kept for the next ones
    // (sketched_gram_solve's cache: the sketch, the blocks and the noises do not change).
    if (!pass.gram_solves) pass.gram_solves = std::make_shared<gram_solve_cache>();
    // Vᵀ Bd V once per set of blocks (the masks of one patch size share it): ritz_denoising
    // reads it (restricted_blocks).
    std::vector<const patch_blocks*> masks;
    for (std::size_t i = 0; i < noises.size(); ++i)
        if (noises[i].draws == 0 && noises[i].family != noise_family::gaussian) masks.push_back(blocks[i]);
    know_blocks(pass, masks);
    refinement_step out;
    // The clean Ritz vectors in Q's coordinates: the stopping curves' denominators (their top
    // `count` are refined too, below: clean_refinement).
    std::optional<ritz_alignment_result> clean;
    generalized_options go;
    go.rel_tol = rel_tol;
    const generalized_result e = generalized_eigen(pass.vsv, pass.gram, go);
    if (pass.cross) {
        clean.emplace();
        clean->refined = pass.coordinates(e.vectors);
        clean->curve = basis_alignment(clean->refined, options.alignment);
    }
    std::vector<double> curves, weights;  // weights: each point's in units of the relative differences' target
    std::vector<matrix_t> ritz, corrections;
    // Where the pass keeps Sxx Q on disk, each noise's corrections (D x 64) wait there too while
    // the next noise's are found (docs/benchmarks-log.md "mem8"), and the clean top's while `corr` is
    // allocated (mem9): read back into `corr` below.
    std::vector<std::shared_ptr<const io::row_spill>> corrections_stored;
    std::size_t correction_cols = 0;
    const auto store_last = [&] {
        correction_cols += corrections.back().shape(1);
        if (!pass.sv_stored) return;
        corrections_stored.push_back(stored(pass.sv_stored->directory(), corrections.back()));
        corrections.back() = matrix_t();
    };
    // Each masking noise's Ritz step and stopping curves first: when the stop fires, no
    // correction is formed (the corrections of a stopping restart were about 11 s of the demo's
    // last restart, then dropped). The same steps in the same order otherwise: the same bits.
    std::vector<std::size_t> refining;  // the noises refined, in order
    std::vector<ritz_denoising_result> tops;  // their leading `count` Ritz vectors
    for (std::size_t i = 0; i < noises.size(); ++i) {
        const noise_spec& n = noises[i];
        if (!blocks[i] || n.draws > 0 || n.family == noise_family::gaussian) continue;
        const ritz_denoising_result v = ritz_denoising(pass, n, blocks[i], rel_tol);  // Vᵀ Bd V once per pass
        const std::size_t k = std::min(options.rank, v.subspace.informative);
        ritz.push_back(xt::view(v.refined.coords, xt::all(), xt::range(0, k)));
        refining.push_back(i);
        tops.push_back(leading_ritz(v, options.count));
        if (clean) {
            const verified_denoising_result vd = verified_denoising(*clean, v, options.alignment);
            const std::size_t kd = std::min(options.count, vd.denoising.relative_difference.size());
            const std::size_t ki = std::min(options.count, vd.impact.normalised.size());
            for (std::size_t j = 0; j < kd; ++j) curves.push_back(vd.denoising.relative_difference(j));
            for (std::size_t j = 0; j < ki; ++j) curves.push_back(vd.impact.normalised(j));
            weights.insert(weights.end(), kd, 1.0);
            weights.insert(weights.end(), ki, refinement_impact_weight);
        }
    }
    out.curves = xt::zeros<double>({curves.size()});
    std::copy(curves.begin(), curves.end(), out.curves.begin());
    vector_t w = xt::zeros<double>({weights.size()});
    std::copy(weights.begin(), weights.end(), w.begin());
    out.change = before ? refinement_change(*before, out.curves, &w) : std::numeric_limits<double>::infinity();
    out.estimate = refinement_estimate(previous_change, out.change);
    if (out.estimate < refinement_stop) {
        out.stopped = true;
        return out;
    }
    // The masks of one set of blocks have their residuals formed together (refinement_residuals:
    // each read of Sxx Q and each sweep of the blocks serves all of them), then each solved with
    // its Ĝ, in the order of the noises; where Sxx Q waits on disk, the residuals not being
    // solved wait there too (as the corrections: store_last).
    if (!refining.empty()) {
        const refinement_factors factors = refinement_factors_of(pass);  // the pass's own, for every mask
        std::vector<bool> done(refining.size(), false);
        for (std::size_t j = 0; j < refining.size(); ++j) {
            if (done[j]) continue;
            std::vector<noise_spec> group_noises;  // those of refining[j]'s blocks
            std::vector<const ritz_denoising_result*> group_ritz;
            for (std::size_t g = j; g < refining.size(); ++g)
                if (!done[g] && blocks[refining[g]] == blocks[refining[j]]) {
                    done[g] = true;
                    group_noises.push_back(noises[refining[g]]);
                    group_ritz.push_back(&tops[g]);
                }
            std::vector<matrix_t> res =
                refinement_residuals(pass, group_noises, *blocks[refining[j]], options.count, group_ritz, factors);
            std::vector<std::shared_ptr<const io::row_spill>> waiting(res.size());
            for (std::size_t g = 1; g < res.size() && pass.sv_stored; ++g) {
                waiting[g] = stored(pass.sv_stored->directory(), res[g]);
                res[g] = matrix_t();
            }
            for (std::size_t g = 0; g < res.size(); ++g) {
                matrix_t r = waiting[g] ? read_back(*waiting[g]) : std::move(res[g]);
                waiting[g].reset();
                corrections.push_back(r.shape(1) ? refinement_direction(sk, pass, group_noises[g], *blocks[refining[j]],
                                                                        std::move(r), rel_tol)
                                                 : std::move(r));
                store_last();
            }
        }
    }  // the factors: two m x m (23.7 MB at the demo's m = 1,216), not held through the rest
    tops.clear();
    // The clean top `count` too (after the masks': restart_coordinates lays the tops out in this
    // order every restart): their Ritz vectors kept, their exact residuals read.
    {
        const std::size_t kc = std::min(options.count, e.vectors.shape(1));
        ritz.push_back(xt::view(e.vectors, xt::all(), xt::range(0, kc)));
        corrections.push_back(clean_refinement(pass, ritz.back(), e.values));
        store_last();  // beside the masks': corr below is allocated without it resident
    }
    // C: which directions of span Q the restart keeps (restart_coordinates), orthonormal in Q's
    // coordinates (Q is orthonormal to rounding), so R = Q C starts with U itself.
    const matrix_t c = restart_coordinates(m, r, ritz, options.count, before ? previous_tops(ritz, options.count) : 0);
    const std::size_t a = c.shape(1);
    restricted_statistics rs = pass.coordinates(c);  // Rᵀ Sxx R, Rᵀ R, (Sxx R)ᵀ(Sxx R), Rᵀ Sxy: exact
    // Rᵀ Bd R = Cᵀ (Qᵀ Bd Q) C, exact likewise: the next restart sweeps the blocks over T only
    // (restricted_blocks; about a sixth of a full sweep's flops at the demo's widths). It is part
    // of the pass's state (restricted_statistics::blocks_known): checkpoints hold it.
    std::vector<known_blocks> carried_blocks;
    for (const known_blocks& f : pass.blocks_known) {
        if (f.leading.shape(0) != m) continue;  // know_blocks above made each m x m
        carried_blocks.push_back({f.geometry, f.dim, f.n, detail::congruence(f.leading, c)});
    }
    const std::size_t width = a + correction_cols;
    // Strong guarantee: everything that reads or makes a file (the corrections waiting beside
    // Sxx Q) and the corrections' D x e copy come before Q and Sxx Q are consumed, so a throw (a
    // full disk, a failing read) leaves `pass` as it was: the caller may retry or checkpoint.
    // After that only memory is allocated. Sxx R from Sxx Q on disk (a completed refinement
    // pass) is a view of Sxx Q's file, rotated as complete_pass reads it (no I/O here; narrowed
    // by another view below).
    std::shared_ptr<const io::row_spill> sv_file = pass.sv_stored ? rotated_view(pass.sv_stored, c, r, width) : nullptr;
    matrix_t corr = detail::fresh_zeros(d, correction_cols);
    for (std::size_t c0 = 0, i = 0; i < corrections.size(); ++i) {
        // The corrections from disk where they wait there (all of them or none), a block of rows at
        // a time.
        if (i < corrections_stored.size()) {
            const io::row_spill& f = *corrections_stored[i];
            const std::size_t e = f.cols();
            constexpr std::size_t rows = 256;
            std::vector<double> block(std::min(d, rows) * e);
            for (std::size_t r0 = 0; r0 < d && e; r0 += rows) {
                const std::size_t rb = std::min(rows, d - r0);
                f.read_rows(r0, rb, block.data());
                for (std::size_t p = 0; p < rb; ++p) std::copy(&block[p * e], &block[p * e] + e, &corr(r0 + p, c0));
            }
            c0 += e;
            continue;
        }
        const std::size_t e = corrections[i].shape(1);
        for (std::size_t p = 0; p < d && e; ++p) std::copy(&corrections[i](p, 0), &corrections[i](p, 0) + e, &corr(p, c0));
        corrections[i] = matrix_t();
        c0 += e;
    }
    corrections_stored.clear();
    // [R, T] and [Sxx R, 0] with R = Q C, Sxx R = (Sxx Q) C, each in the storage of what it is
    // formed from when the widths agree (they do from the second restart on: a + corrections = m).
    matrix_t basis = rotated_rows(std::move(pass.basis), c, r, width);
    pass.basis = matrix_t();
    matrix_t sv = pass.sv_stored ? matrix_t() : rotated_rows(std::move(pass.sv), c, r, width);
    pass.sv = matrix_t();
    pass.sv_stored.reset();
    const std::size_t mm = orthonormal_extension(basis, a, std::move(corr));
    if (mm < width) {  // dependent corrections left out: the columns after mm are not part of it
        basis = leading_columns_released(std::move(basis), mm);
        if (sv_file) sv_file = std::make_shared<const io::row_spill>(std::move(sv_file), mm);  // a view: no I/O
        else sv = leading_columns_released(std::move(sv), mm);
    }
    restricted_statistics& known = out.next.known;
    known.center = pass.center;
    known.n = pass.n;
    known.basis = std::move(basis);
    known.sv = std::move(sv);
    known.sv_stored = std::move(sv_file);
    known.gram_solves = pass.gram_solves;
    known.blocks_known = std::move(carried_blocks);
    known.vsv = std::move(rs.vsv);
    known.gram = std::move(rs.gram);
    known.svsv = std::move(rs.svsv);
    known.cross = std::move(rs.cross);
    out.next.carried = a;
    return out;
}

restricted_statistics complete_pass(refinement_pass&& next, restricted_statistics&& t) {
    next.restore();
    restricted_statistics& s = next.known;
    const std::size_t d = s.basis.shape(0), m = next.k(), a = next.carried, b = m - a;
    if (t.in_coordinates() || t.dim() != d || t.k() != b || t.n != s.n || t.center != s.center ||
        t.cross.has_value() != s.cross.has_value() ||
        (s.cross && (t.cross->sxy.shape(1) != s.cross->sxy.shape(1) || t.cross->center != s.cross->center)))
        throw std::invalid_argument("complete_pass: the pass is not of the same data as the carried statistics");
    for (std::size_t i = 0; i < d; ++i)
        if (b && std::memcmp(&t.basis(i, 0), &s.basis(i, a), b * sizeof(double)) != 0)
            throw std::invalid_argument("complete_pass: the pass did not read the new directions of this refinement");
    t.basis = matrix_t();  // the same bits as the carried basis's last columns
    // Rᵀ Sxx T = (Sxx R)ᵀ T (as `joined`), Rᵀ T, Tᵀ T, (Sxx R)ᵀ(Sxx T), (Sxx T)ᵀ(Sxx T): a block
    // of rows at a time (no D x a or D x b copies).
    matrix_t rt = xt::zeros<double>({a, b}), grt = xt::zeros<double>({a, b}), gtt = xt::zeros<double>({b, b});
    matrix_t srt = xt::zeros<double>({a, b}), stt = xt::zeros<double>({b, b});
    // Sxx [R, T] on disk when Sxx R was (a spilled pass): into a new file beside it, so copies
    // sharing the old one keep its [Sxx R, 0].
    const bool disk = s.sv_stored != nullptr;
    std::shared_ptr<io::row_spill> joined_sv = disk ? std::make_shared<io::row_spill>(s.sv_stored->directory(), d, m) : nullptr;
    constexpr std::size_t rows = 512;
    std::vector<double> xr(rows * a), xt_(rows * b), sr(rows * a), st(rows * b), svrow(disk ? rows * m : 0);
    for (std::size_t r0 = 0; r0 < d; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        if (disk) s.sv_stored->read_rows(r0, rb, svrow.data());
        for (std::size_t i = 0; i < rb; ++i) {
            double* svr = disk ? &svrow[i * m] : &s.sv(r0 + i, 0);
            std::copy(&s.basis(r0 + i, 0), &s.basis(r0 + i, 0) + a, &xr[i * a]);
            std::copy(&s.basis(r0 + i, 0) + a, &s.basis(r0 + i, 0) + m, &xt_[i * b]);
            std::copy(svr, svr + a, &sr[i * a]);
            std::copy(&t.sv(r0 + i, 0), &t.sv(r0 + i, 0) + b, &st[i * b]);
            std::copy(&t.sv(r0 + i, 0), &t.sv(r0 + i, 0) + b, svr + a);
        }
        if (disk) joined_sv->write_rows(r0, rb, svrow.data());
        blas::gemm_tn(a, b, rb, 1.0, sr.data(), xt_.data(), 1.0, rt.data());
        blas::gemm_tn(a, b, rb, 1.0, xr.data(), xt_.data(), 1.0, grt.data());
        blas::gemm_tn(b, b, rb, 1.0, xt_.data(), xt_.data(), 1.0, gtt.data());
        blas::gemm_tn(a, b, rb, 1.0, sr.data(), st.data(), 1.0, srt.data());
        blas::gemm_tn(b, b, rb, 1.0, st.data(), st.data(), 1.0, stt.data());
    }
    t.sv = matrix_t();
    if (disk) s.sv_stored = std::move(joined_sv);
    auto assemble = [a, b, m](const matrix_t& rr, const matrix_t& rt_, const matrix_t& tt) {
        matrix_t o = xt::zeros<double>({m, m});
        for (std::size_t i = 0; i < a; ++i)
            for (std::size_t j = 0; j < a; ++j) o(i, j) = rr(i, j);
        for (std::size_t i = 0; i < b; ++i)
            for (std::size_t j = 0; j < b; ++j) o(a + i, a + j) = 0.5 * (tt(i, j) + tt(j, i));
        for (std::size_t i = 0; i < a; ++i)
            for (std::size_t j = 0; j < b; ++j) o(i, a + j) = o(a + j, i) = rt_(i, j);
        return o;
    };
    s.vsv = assemble(s.vsv, rt, t.vsv);
    s.gram = assemble(s.gram, grt, gtt);
    s.svsv = assemble(s.svsv, srt, stt);
    s.frame = std::make_shared<const matrix_t>(s.gram);
    if (s.cross) {
        const std::size_t nc = s.cross->sxy.shape(1);
        matrix_t sxy = xt::zeros<double>({m, nc});
        for (std::size_t j = 0; j < nc; ++j) {
            for (std::size_t i = 0; i < a; ++i) sxy(i, j) = s.cross->sxy(i, j);
            for (std::size_t i = 0; i < b; ++i) sxy(a + i, j) = t.cross->sxy(i, j);
        }
        s.cross->sxy = std::move(sxy);
    }
    return std::move(s);
}

double refinement_change(const vector_t& before, const vector_t& after, const vector_t* weights) {
    if (before.size() == 0 || before.size() != after.size()) return std::numeric_limits<double>::infinity();
    if (weights && weights->size() != after.size())
        throw std::invalid_argument("refinement_change: one weight per curve point");
    double worst = 0.0;
    for (std::size_t i = 0; i < before.size(); ++i) {
        const bool nb = std::isnan(before(i)), na = std::isnan(after(i));
        if (nb && na) continue;  // e.g. a relative difference where the clean curve is 0 on both
        if (nb || na) return std::numeric_limits<double>::infinity();
        worst = std::max(worst, (weights ? (*weights)(i) : 1.0) * std::abs(after(i) - before(i)));
    }
    return worst;
}

double refinement_estimate(double previous_change, double change) {
    constexpr double inf = std::numeric_limits<double>::infinity();
    if (!std::isfinite(change)) return inf;
    if (change == 0.0) return 0.0;
    if (!std::isfinite(previous_change) || !(previous_change > 0.0)) return inf;
    const double rho = change / previous_change;
    if (rho >= 1.0) return inf;
    return std::max(change, change * rho / (1.0 - rho));
}

}  // namespace recalign

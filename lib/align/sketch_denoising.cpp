#include "recalign/align/sketch_denoising.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "columns.hpp"
#include "nested.hpp"
#include "recalign/core/blas.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/spill.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign {

namespace {
const char* who = "sketched_denoising_subspace";

void refuse(const std::string& why) { throw std::invalid_argument(std::string(who) + ": " + why); }

// Corollary 3.1: G = Sxx + nσ²I shares the eigenvectors of Sxx; μ_i = λ_i² / (λ_i + nσ²),
// and v_i = u_i / √(λ_i + nσ²) is G-orthonormal.
denoising_subspace_result gaussian(const spectrum& s, double sigma, double rel_tol) {
    const std::size_t d = s.dim, r = s.rank();
    const double shift = static_cast<double>(s.n) * sigma * sigma;
    denoising_subspace_result out;
    out.status = s.status;
    out.rank_g = r;
    out.eigenvalues = xt::zeros<double>({r});
    out.basis = xt::zeros<double>({d, r});
    for (std::size_t j = 0; j < r; ++j) {
        const double lam = std::max(s.eigenvalues(j), 0.0), g = lam + shift;
        out.eigenvalues(j) = g > 0 ? lam * lam / g : 0.0;
        const double scale = g > 0 ? 1.0 / std::sqrt(g) : 0.0;
        for (std::size_t i = 0; i < d; ++i) out.basis(i, j) = s.basis(i, j) * scale;
    }
    // λ²/(λ + nσ²) is increasing in λ: the order of the spectrum is kept.
    const double top = r > 0 ? out.eigenvalues(0) : 0.0;
    while (out.informative < r && out.eigenvalues(out.informative) > rel_tol * top) ++out.informative;
    return out;
}
// E_b⁻¹ X in X's storage by a Cholesky factor of E_b (sb x sb, symmetric, left intact) when
// every eigenvalue of E_b is proven above `cut`, so that E_b⁺ = E_b⁻¹ (MATH.md §7, "Cholesky
// where it is proven"): the floating-point Cholesky of E_b − σI with σ = 2(cut + κ Σ|e_ii|),
// κ = 2(sb + 2)u, runs to completion only if λ_min(E_b) > cut (Higham, Thm 10.3, whatever the
// order of the sums). Returns false (X untouched) when that is not proven: the eigen route.
// x and y (sb x any) are solved apart: each column's bits then depend only on E_b and the
// width of its own matrix (OpenBLAS's dtrsm rounds a column differently with other widths), so
// the right-hand sides solved from a cached factor (gram_solve_cache) get the bits they get here.
// `packed` (optional) receives R's upper triangle, row by row (sb (sb + 1) / 2 doubles).
bool cholesky_solve(const matrix_t& eb, double cut, matrix_t& x, matrix_t& y, std::vector<double>* packed = nullptr) {
    const std::size_t sb = eb.shape(0);
    const double u = std::numeric_limits<double>::epsilon() / 2, kappa = 2.0 * static_cast<double>(sb + 2) * u;
    if (sb == 0 || kappa * static_cast<double>(sb) > 0.25) return false;
    double trace = 0.0;
    for (std::size_t i = 0; i < sb; ++i) trace += std::abs(eb(i, i));
    const double sigma = 2.0 * (cut + kappa * trace);
    if (!std::isfinite(sigma)) return false;
    matrix_t f = eb;
    for (std::size_t i = 0; i < sb; ++i) f(i, i) -= sigma;
    if (blas::potrf_upper_in_place(sb, f.data()) != 0) return false;  // the proof
    f = eb;
    if (blas::potrf_upper_in_place(sb, f.data()) != 0) return false;  // E_b = Rᵀ R (upper triangle)
    if (packed) {
        packed->clear();
        for (std::size_t i = 0; i < sb; ++i) packed->insert(packed->end(), &f(i, i), &f(i, 0) + sb);
    }
    for (matrix_t* z : {&x, &y}) {
        if (!z->size()) continue;
        blas::trsm_left_upper(true, sb, z->shape(1), f.data(), z->data());   // Rᵀ Y = X
        blas::trsm_left_upper(false, sb, z->shape(1), f.data(), z->data());  // R Z = Y
    }
    return true;
}

// P_+ D_+⁻¹ P_+ᵀ X in X's storage (P_+: sb x rb, row-major; D_+: `values`), apart for each
// right-hand side matrix like cholesky_solve's.
void eigen_apply(const double* p, const double* values, std::size_t sb, std::size_t rb, matrix_t& x) {
    const std::size_t w = x.shape(1);
    if (w == 0 || rb == 0) return;
    matrix_t pu = xt::zeros<double>({rb, w});
    blas::gemm_tn(rb, w, sb, 1.0, p, x.data(), 0.0, pu.data());
    for (std::size_t i = 0; i < rb; ++i)
        for (std::size_t j = 0; j < w; ++j) pu(i, j) /= values[i];
    blas::gemm_nn(sb, w, rb, 1.0, p, pu.data(), 0.0, x.data());
}

}  // namespace

// sketch_denoising.hpp's cache: what one (sketch, blocks, coefficients, options) is, and what
// the solve formed from it.
struct gram_solve_cache::entry {
    // The pieces it was formed from (same_pieces).
    const patch_blocks* blocks = nullptr;
    std::uint64_t n = 0, blocks_config = 0, basis_hash = 0;
    std::size_t dim = 0, rank = 0, block_count = 0;
    centering center = centering::centered;
    double max_diag = 0.0, k_diff = 0.0, k_same = 0.0, rel_tol = 0.0;
    bool cholesky = true;
    std::vector<double> eigenvalues;
    // Block b's factor at words offset .. offset + size: R packed (cholesky), or P_+ (sb x kept,
    // row-major) then the kept eigenvalues; kept = 0 and not cholesky: no direction kept.
    struct route {
        std::size_t offset = 0, kept = 0;
        bool cholesky = false;
    };
    std::vector<route> routes;
    std::size_t words = 0;
    block_solve_counts counts;
    std::vector<double> factors;                     // in memory, or
    std::shared_ptr<io::row_spill> factors_file;     // on disk (words x 1, reserved for more)
    matrix_t eu;                                     // E⁺U (D x r) in memory, or
    std::shared_ptr<io::row_spill> eu_file;          // on disk
    matrix_t t, chol;                                // Woodbury's T and M's factor R
    vector_t l;                                      // diag L

    void record(std::size_t b, bool chol_route, std::size_t kept, const std::vector<double>& x) {
        routes.at(b) = route{words, kept, chol_route};
        if (x.empty()) return;
        if (factors_file) factors_file->write_rows(words, x.size(), x.data());
        else factors.insert(factors.end(), x.begin(), x.end());
        words += x.size();
    }
    void read(const route& rt, std::size_t size, std::vector<double>& out) const {
        out.resize(size);
        if (size == 0) return;
        if (factors_file) factors_file->read_rows(rt.offset, size, out.data());
        else std::copy(factors.begin() + static_cast<std::ptrdiff_t>(rt.offset),
                       factors.begin() + static_cast<std::ptrdiff_t>(rt.offset + size), out.begin());
    }
};

namespace {
// A fingerprint of the sketch's basis (four interleaved multiply-xor chains over its 64-bit
// words: ~40 ms for D x 256 at 224x224x3), for matching a cache entry by content.
std::uint64_t basis_fingerprint(const matrix_t& x) {
    std::uint64_t h[4] = {0xcbf29ce484222325ULL, 0x84222325cbf29ce4ULL, 0x9e3779b97f4a7c15ULL, 0x7f4a7c159e3779b9ULL};
    const std::size_t n = x.size();
    const double* p = x.data();
    std::size_t i = 0;
    for (; i + 4 <= n; i += 4)
        for (int k = 0; k < 4; ++k) {
            std::uint64_t w;
            std::memcpy(&w, p + i + k, sizeof w);
            h[k] = (h[k] ^ w) * 0x100000001b3ULL;
        }
    for (; i < n; ++i) {
        std::uint64_t w;
        std::memcpy(&w, p + i, sizeof w);
        h[0] = (h[0] ^ w) * 0x100000001b3ULL;
    }
    return h[0] ^ (h[1] * 3) ^ (h[2] * 5) ^ (h[3] * 7) ^ n;
}

// The masking model's pieces from the sketch and the blocks (MATH.md §7): keep
// probabilities, and E⁺ applied to U and to optional extra right-hand sides R, block by block:
// E_b = (c1 + c2) Bd_b − c1 U_b Λ U_bᵀ; where every eigenvalue is proven above the null cut,
// E_b⁺ = E_b⁻¹ by Cholesky; else E_b = P D Pᵀ, E_b⁺ = P_+ D_+⁻¹ P_+ᵀ (directions with
// eigenvalue <= rel_tol · scale of G are null: pixels that never vary).
struct block_solve {
    keep_probabilities keep;
    matrix_t eu;  // E⁺ U: D x r
    matrix_t er;  // E⁺ R: D x e, in the storage of R (moved in)
    std::size_t kept = 0;
    solver_status status = solver_status::converged;
    block_solve_counts counts;
};

void check_pieces(const spectrum& s, const patch_blocks* blocks, const matrix_t* rhs) {
    const std::size_t d = s.dim;
    if (!blocks) refuse("patch masking needs the exact patch blocks of the data (MATH.md §7)");
    if (blocks->dim() != d) refuse("the patch blocks have D = " + std::to_string(blocks->dim()) + ", the sketch " + std::to_string(d));
    if (blocks->n() != s.n)
        refuse("the patch blocks cover " + std::to_string(blocks->n()) + " samples, the sketch " + std::to_string(s.n));
    if (rhs && rhs->shape(0) != d) refuse("a right-hand side of " + std::to_string(rhs->shape(0)) + " rows for D = " + std::to_string(d));
}

// `record` (optional): each block's factor is written to it as it is formed (the cache's entry).
block_solve solve_blocks(const spectrum& s, const noise_spec& noise, const patch_blocks* blocks,
                         const sketch_denoising_options& options, matrix_t* rhs,
                         gram_solve_cache::entry* record = nullptr) {
    const double rel_tol = options.rel_tol;
    const std::size_t d = s.dim, r = s.rank(), e = rhs ? rhs->shape(1) : 0;
    check_pieces(s, blocks, rhs);
    block_solve out;
    out.keep = blocks->coefficients(noise);
    const double c1 = out.keep.k_diff, csame = out.keep.k_same;  // c1 + c2 = P(keep both, same patch)
    // Scale of G for the null cut: ‖G‖ <= c1 λ_1 + (c1 + c2) max_i Bd_ii (+ the sketch's tail).
    // (One block at a time below: all of them unpacked would be D·s doubles.)
    const double max_diag = blocks->max_diagonal(s.center);
    const double lam1 = r > 0 ? std::max(s.eigenvalues(0), 0.0) : 0.0;
    const double cut = rel_tol * (c1 * lam1 + csame * max_diag);
    out.eu = xt::zeros<double>({d, r});
    // E⁺R over R itself: each block reads its rows of R before it writes them (the blocks
    // partition the coordinates); rows no block solves (rb = 0, or none) are set to 0 below.
    if (rhs) out.er = std::move(*rhs);
    else out.er = xt::zeros<double>({d, e});
    std::vector<char> solved(e ? d : 0, 0);
    bool nonnegative = true;
    vector_t root = xt::zeros<double>({r});
    for (std::size_t j = 0; j < r; ++j) {
        nonnegative = nonnegative && s.eigenvalues(j) >= 0.0;
        root(j) = std::sqrt(std::max(s.eigenvalues(j), 0.0));
    }
    std::vector<double> factor;
    for (std::size_t b = 0; b < blocks->blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks->indices(b);
        const std::size_t sb = idx.size();
        matrix_t ub = xt::zeros<double>({sb, r}), xu = xt::zeros<double>({sb, r}), xr = xt::zeros<double>({sb, e});
        for (std::size_t i = 0; i < sb; ++i) {
            for (std::size_t j = 0; j < r; ++j) xu(i, j) = ub(i, j) = s.basis(idx[i], j);
            for (std::size_t j = 0; j < e; ++j) xr(i, j) = out.er(idx[i], j);
        }
        matrix_t eb_mat = csame * blocks->block(b, s.center);
        matrix_t ul = ub;
        if (nonnegative) {  // − c1 (U_b Λ^½)(U_b Λ^½)ᵀ: one SYRK, half a GEMM's flops
            for (std::size_t i = 0; i < sb; ++i)
                for (std::size_t j = 0; j < r; ++j) ul(i, j) *= root(j);
            blas::syrk_nt(sb, r, -c1, ul.data(), 1.0, eb_mat.data());
            blas::symmetrize_from_upper(sb, eb_mat.data());
        } else {
            for (std::size_t i = 0; i < sb; ++i)
                for (std::size_t j = 0; j < r; ++j) ul(i, j) *= s.eigenvalues(j);
            blas::gemm_nt(sb, sb, r, -c1, ul.data(), ub.data(), 1.0, eb_mat.data());
        }
        if (options.cholesky && cholesky_solve(eb_mat, cut, xu, xr, record ? &factor : nullptr)) {
            if (record) record->record(b, true, 0, factor);
            ++out.counts.cholesky;
            out.kept += sb;
            for (std::size_t i = 0; i < sb; ++i) {
                for (std::size_t j = 0; j < r; ++j) out.eu(idx[i], j) = xu(i, j);
                for (std::size_t j = 0; j < e; ++j) out.er(idx[i], j) = xr(i, j);
                if (e) solved[idx[i]] = 1;
            }
            continue;
        }
        ++out.counts.eigen;
        const eigen_result eb = sym_eigen(eb_mat);
        out.status = worst(out.status, solver_status_of(eb.info));
        std::size_t rb = 0;
        while (rb < sb && eb.values(rb) > cut) ++rb;
        out.kept += rb;
        matrix_t p = xt::view(eb.vectors, xt::all(), xt::range(0, rb));
        if (record) {
            factor.assign(p.begin(), p.end());
            for (std::size_t i = 0; i < rb; ++i) factor.push_back(eb.values(i));
            record->record(b, false, rb, factor);
        }
        if (rb == 0) continue;
        eigen_apply(p.data(), eb.values.data(), sb, rb, xu);
        eigen_apply(p.data(), eb.values.data(), sb, rb, xr);
        for (std::size_t i = 0; i < sb; ++i) {
            for (std::size_t j = 0; j < r; ++j) out.eu(idx[i], j) = xu(i, j);
            for (std::size_t j = 0; j < e; ++j) out.er(idx[i], j) = xr(i, j);
            if (e) solved[idx[i]] = 1;
        }
    }
    for (std::size_t i = 0; i < solved.size(); ++i)
        if (!solved[i]) std::fill(&out.er(i, 0), &out.er(i, 0) + e, 0.0);
    return out;
}

// Woodbury for Ĝ = E + U L² Uᵀ, L = (c1 Λ)^{1/2}: T = Uᵀ E⁺ U, M = I + L T L = Rᵀ R,
// Ĝ⁻¹ = E⁺ − E⁺ U L M⁻¹ L Uᵀ E⁺ (on range E; null pixels stay null).
struct woodbury {
    matrix_t t;     // T
    vector_t l;     // diag L
    matrix_t chol;  // R (upper)
    bool ok = true;
    // M⁻¹ B for an r x k right-hand side, through Rᵀ R (two triangular solves, dtrsm).
    matrix_t solve(matrix_t rhs) const {
        const std::size_t r = chol.shape(0), k = rhs.shape(1);
        blas::trsm_left_upper(true, r, k, chol.data(), rhs.data());   // Rᵀ y = b
        blas::trsm_left_upper(false, r, k, chol.data(), rhs.data());  // R z = y
        return rhs;
    }
};

woodbury make_woodbury(const spectrum& s, const matrix_t& eu, double c1) {
    const std::size_t d = s.dim, r = s.rank();
    woodbury w;
    w.t = xt::zeros<double>({r, r});
    blas::gemm_tn(r, r, d, 1.0, s.basis.data(), eu.data(), 0.0, w.t.data());
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = i + 1; j < r; ++j) w.t(i, j) = w.t(j, i) = 0.5 * (w.t(i, j) + w.t(j, i));
    w.l = xt::zeros<double>({r});
    for (std::size_t j = 0; j < r; ++j) w.l(j) = std::sqrt(c1 * std::max(s.eigenvalues(j), 0.0));
    w.chol = xt::eye<double>(r);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) w.chol(i, j) += w.l(i) * w.t(i, j) * w.l(j);
    w.ok = r == 0 || blas::potrf_upper(r, w.chol.data()) == 0;  // I + L T L is PD in exact arithmetic
    return w;
}
}  // namespace

namespace {
// Ĝ⁻¹ R = E⁺R − E⁺U L M⁻¹ L Uᵀ E⁺R from out = E⁺R (overwritten), E⁺U in memory or on disk (read
// a block of rows at a time: the same products row by row).
void woodbury_correct(const spectrum& s, const woodbury& w, const matrix_t* eu, const io::row_spill* eu_file,
                      matrix_t& out) {
    const std::size_t d = s.dim, r = s.rank(), e = out.shape(1);
    matrix_t y = xt::zeros<double>({r, e});
    blas::gemm_tn(r, e, d, 1.0, s.basis.data(), out.data(), 0.0, y.data());
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < e; ++j) y(i, j) *= w.l(i);
    matrix_t z = w.solve(y);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < e; ++j) z(i, j) *= w.l(i);
    if (eu) {
        blas::gemm_nn(d, e, r, -1.0, eu->data(), z.data(), 1.0, out.data());
        return;
    }
    constexpr std::size_t rows = 512;
    std::vector<double> block(std::min(d, rows) * r);
    for (std::size_t r0 = 0; r0 < d; r0 += rows) {
        const std::size_t rb = std::min(rows, d - r0);
        eu_file->read_rows(r0, rb, block.data());
        blas::gemm_nn(rb, e, r, -1.0, block.data(), z.data(), 1.0, out.data() + r0 * e);
    }
}

// E⁺R in R's storage from the entry's factors: the products of solve_blocks on R's columns alone.
matrix_t cached_blocks_solve(const gram_solve_cache::entry& en, const patch_blocks& blocks, matrix_t er) {
    const std::size_t d = en.dim, e = er.shape(1);
    std::vector<char> solved(d, 0);
    std::vector<double> buf;
    for (std::size_t b = 0; b < blocks.blocks(); ++b) {
        const std::vector<std::size_t>& idx = blocks.indices(b);
        const std::size_t sb = idx.size(), kept = en.routes[b].kept;
        const gram_solve_cache::entry::route& rt = en.routes[b];
        if (!rt.cholesky && kept == 0) continue;
        matrix_t xb = xt::zeros<double>({sb, e});
        for (std::size_t i = 0; i < sb; ++i) std::copy(&er(idx[i], 0), &er(idx[i], 0) + e, &xb(i, 0));
        if (rt.cholesky) {
            en.read(rt, sb * (sb + 1) / 2, buf);
            matrix_t f = xt::zeros<double>({sb, sb});
            for (std::size_t i = 0, o = 0; i < sb; o += sb - i, ++i) std::copy(&buf[o], &buf[o] + (sb - i), &f(i, i));
            blas::trsm_left_upper(true, sb, e, f.data(), xb.data());   // Rᵀ Y = X
            blas::trsm_left_upper(false, sb, e, f.data(), xb.data());  // R Z = Y
        } else {
            en.read(rt, sb * kept + kept, buf);
            eigen_apply(buf.data(), buf.data() + sb * kept, sb, kept, xb);
        }
        for (std::size_t i = 0; i < sb; ++i) {
            std::copy(&xb(i, 0), &xb(i, 0) + e, &er(idx[i], 0));
            solved[idx[i]] = 1;
        }
    }
    for (std::size_t i = 0; i < d; ++i)
        if (!solved[i]) std::fill(&er(i, 0), &er(i, 0) + e, 0.0);
    return er;
}

// The key of an entry for these pieces (its factors empty).
std::shared_ptr<gram_solve_cache::entry> pieces_of(const spectrum& s, const patch_blocks& blocks,
                                                   const keep_probabilities& keep, const sketch_denoising_options& o) {
    auto en = std::make_shared<gram_solve_cache::entry>();
    en->blocks = &blocks;
    en->n = blocks.n();
    en->blocks_config = blocks.config_hash();
    en->block_count = blocks.blocks();
    en->max_diag = blocks.max_diagonal(s.center);
    en->dim = s.dim;
    en->rank = s.rank();
    en->center = s.center;
    en->basis_hash = basis_fingerprint(s.basis);
    en->eigenvalues.assign(s.eigenvalues.begin(), s.eigenvalues.end());
    en->k_diff = keep.k_diff;
    en->k_same = keep.k_same;
    en->rel_tol = o.rel_tol;
    en->cholesky = o.cholesky;
    return en;
}

bool same_pieces(const gram_solve_cache::entry& a, const gram_solve_cache::entry& b) {
    const auto bits = [](double x, double y) { return std::memcmp(&x, &y, sizeof x) == 0; };
    return a.blocks == b.blocks && a.n == b.n && a.blocks_config == b.blocks_config && a.block_count == b.block_count &&
           bits(a.max_diag, b.max_diag) && a.dim == b.dim && a.rank == b.rank && a.center == b.center &&
           a.basis_hash == b.basis_hash && a.eigenvalues.size() == b.eigenvalues.size() &&
           (a.eigenvalues.empty() ||
            std::memcmp(a.eigenvalues.data(), b.eigenvalues.data(), a.eigenvalues.size() * sizeof(double)) == 0) &&
           bits(a.k_diff, b.k_diff) && bits(a.k_same, b.k_same) && bits(a.rel_tol, b.rel_tol) && a.cholesky == b.cholesky;
}
}  // namespace

matrix_t sketched_gram_solve(const spectrum& s, const noise_spec& noise, const patch_blocks& blocks, matrix_t rhs,
                             const sketch_denoising_options& options, block_solve_counts* counts) {
    return sketched_gram_solve(s, noise, blocks, std::move(rhs), options, counts, nullptr);
}

namespace {
// The cache's entry for these pieces, or null.
std::shared_ptr<const gram_solve_cache::entry> cached_entry(const gram_solve_cache& cache,
                                                            const gram_solve_cache::entry& key) {
    for (const std::shared_ptr<const gram_solve_cache::entry>& en : cache.entries)
        if (same_pieces(*en, key)) return en;
    return nullptr;
}

// A key ready to record solve_blocks's factors, in unlinked files in `dir` when it is not empty.
void prepare_entry(gram_solve_cache::entry& key, const patch_blocks& blocks, const std::string& dir) {
    key.routes.resize(blocks.blocks());
    if (dir.empty()) return;
    std::size_t bound = 0;  // words: R packed, or P_+ and its values (at most sb (sb + 1))
    for (std::size_t b = 0; b < blocks.blocks(); ++b) bound += blocks.indices(b).size() * (blocks.indices(b).size() + 1);
    key.factors_file = std::make_shared<io::row_spill>(dir, std::max<std::size_t>(bound, 1), 1);
    key.eu_file = std::make_shared<io::row_spill>(dir, key.dim, key.rank);
}

// The recorded key completed with E⁺U (written to its file, or moved in: `eu` is then empty)
// and Woodbury's pieces, kept in the cache (the oldest entry dropped beyond the limit).
void keep_entry(gram_solve_cache& cache, std::shared_ptr<gram_solve_cache::entry> key, const block_solve_counts& counts,
                const woodbury& w, matrix_t& eu) {
    key->counts = counts;
    key->t = w.t;
    key->l = w.l;
    key->chol = w.chol;
    if (key->eu_file) key->eu_file->write_rows(0, key->dim, eu.data());
    else key->eu = std::move(eu);
    cache.entries.push_back(std::move(key));
    if (cache.entries.size() > gram_solve_cache_entries) cache.entries.erase(cache.entries.begin());
}
}  // namespace

matrix_t sketched_gram_solve(const spectrum& s, const noise_spec& noise, const patch_blocks& blocks, matrix_t rhs,
                             const sketch_denoising_options& options, block_solve_counts* counts,
                             gram_solve_cache* cache, const std::string& dir) {
    if (!(options.rel_tol >= 0.0)) refuse("rel_tol must be >= 0");
    if (noise.draws > 0 || noise.family == noise_family::gaussian)
        refuse("Ĝ from blocks is for closed-form masking noises only");
    check_pieces(s, &blocks, &rhs);
    const std::size_t r = s.rank(), e = rhs.shape(1);
    std::shared_ptr<gram_solve_cache::entry> key;
    if (cache && r > 0 && e > 0) {
        key = pieces_of(s, blocks, blocks.coefficients(noise), options);
        if (const std::shared_ptr<const gram_solve_cache::entry> en = cached_entry(*cache, *key)) {
            if (counts) *counts = en->counts;
            matrix_t out = cached_blocks_solve(*en, blocks, std::move(rhs));
            woodbury w;
            w.t = en->t;
            w.l = en->l;
            w.chol = en->chol;
            woodbury_correct(s, w, en->eu_file ? nullptr : &en->eu, en->eu_file.get(), out);
            return out;
        }
        prepare_entry(*key, blocks, dir);
    }
    block_solve bs = solve_blocks(s, noise, &blocks, options, &rhs, key.get());
    if (counts) *counts = bs.counts;
    matrix_t out = std::move(bs.er);
    if (r == 0 || e == 0) return out;
    const woodbury w = make_woodbury(s, bs.eu, bs.keep.k_diff);
    if (!w.ok) throw std::runtime_error(std::string(who) + ": I + L T L is not positive definite (rounding)");
    woodbury_correct(s, w, &bs.eu, nullptr, out);
    if (key) keep_entry(*cache, std::move(key), bs.counts, w, bs.eu);
    return out;
}

denoising_subspace_result sketched_denoising_subspace(const spectrum& s, const noise_spec& noise,
                                                      const patch_blocks* blocks,
                                                      const sketch_denoising_options& options) {
    return sketched_denoising_subspace(s, noise, blocks, options, nullptr);
}

denoising_subspace_result sketched_denoising_subspace(const spectrum& s, const noise_spec& noise,
                                                      const patch_blocks* blocks, const sketch_denoising_options& options,
                                                      gram_solve_cache* cache, const std::string& dir) {
    if (!(options.rel_tol >= 0.0)) refuse("rel_tol must be >= 0");
    if (noise.draws > 0) refuse("a Monte-Carlo noise has no closed form: sketch the corrupted samples instead");
    if (noise.family == noise_family::gaussian) return gaussian(s, noise.sigma, options.rel_tol);
    const std::size_t d = s.dim, r = s.rank();
    check_pieces(s, blocks, nullptr);
    // The factors recorded for sketched_gram_solve on the way (its entry for these pieces), unless
    // the cache holds them already.
    std::shared_ptr<gram_solve_cache::entry> key;
    if (cache && r > 0) {
        key = pieces_of(s, *blocks, blocks->coefficients(noise), options);
        if (cached_entry(*cache, *key)) key.reset();
        else prepare_entry(*key, *blocks, dir);
    }
    block_solve bs = solve_blocks(s, noise, blocks, options, nullptr, key.get());
    const double q = bs.keep.q, c1 = bs.keep.k_diff;
    matrix_t& x = bs.eu;  // E⁺ U

    denoising_subspace_result out;
    out.status = worst(s.status, bs.status);
    out.rank_g = bs.kept;
    out.dropped = d - bs.kept;
    if (r == 0) {
        out.eigenvalues = xt::zeros<double>({std::size_t(0)});
        out.basis = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    // T = Uᵀ E⁺ U; with L = (c1 Λ)^{1/2} and M = I + L T L = Rᵀ R (Woodbury):
    // Uᵀ Ĝ⁻¹ U = T − T L M⁻¹ L T, and Ĝ⁻¹ U Λ W = X (Λ W − L M⁻¹ L T Λ W).
    const woodbury wb = make_woodbury(s, x, c1);
    if (!wb.ok) {
        out.status = worst(out.status, solver_status::breakdown);
        out.eigenvalues = xt::zeros<double>({std::size_t(0)});
        out.basis = xt::zeros<double>({d, std::size_t(0)});
        return out;
    }
    if (key) {  // E⁺U into the entry's file before V is formed in its storage (in memory: a copy)
        const bool on_disk = key->eu_file != nullptr;
        matrix_t copy = on_disk ? matrix_t() : matrix_t(x);
        keep_entry(*cache, std::move(key), bs.counts, wb, on_disk ? x : copy);
    }
    const matrix_t& t = wb.t;
    const vector_t& l = wb.l;
    // K = Uᵀ Ĝ⁻¹ U = T − (T L) M⁻¹ (L T).
    matrix_t lt = xt::zeros<double>({r, r});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) lt(i, j) = l(i) * t(i, j);
    const matrix_t mlt = wb.solve(lt);
    matrix_t kmat = t;
    blas::gemm_tn(r, r, r, -1.0, lt.data(), mlt.data(), 1.0, kmat.data());
    // S = Λ K Λ; q² S w = μ w.
    matrix_t smat = xt::zeros<double>({r, r});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < r; ++j) smat(i, j) = s.eigenvalues(i) * kmat(i, j) * s.eigenvalues(j);
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = i + 1; j < r; ++j) smat(i, j) = smat(j, i) = 0.5 * (smat(i, j) + smat(j, i));
    const eigen_result es = sym_eigen(smat);
    out.status = worst(out.status, solver_status_of(es.info));
    const double top = std::max(es.values(0), 0.0);
    std::size_t k = 0;
    while (k < r && es.values(k) > options.rel_tol * top) ++k;
    out.informative = k;
    out.eigenvalues = xt::zeros<double>({k});
    for (std::size_t j = 0; j < k; ++j) out.eigenvalues(j) = q * q * es.values(j);
    // Z = Λ W − L M⁻¹ L T Λ W, then V = X Z, columns scaled to vᵀ Ĝ v = wᵀ S w = s_j → 1.
    matrix_t lw = xt::zeros<double>({r, k});
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < k; ++j) lw(i, j) = s.eigenvalues(i) * es.vectors(i, j);
    matrix_t tlw = xt::zeros<double>({r, k});
    blas::gemm_nn(r, k, r, 1.0, lt.data(), lw.data(), 0.0, tlw.data());  // L T Λ W
    matrix_t corr = wb.solve(tlw);
    matrix_t z = lw;
    for (std::size_t i = 0; i < r; ++i)
        for (std::size_t j = 0; j < k; ++j) z(i, j) -= l(i) * corr(i, j);
    if (k == r) {  // V = X Z in X's storage, a block of rows at a time (no second D x r matrix)
        detail::multiply_rows_in_place(x, z);
        out.basis = std::move(x);
    } else {
        out.basis = xt::zeros<double>({d, k});
        blas::gemm_nn(d, k, r, 1.0, x.data(), z.data(), 0.0, out.basis.data());
    }
    std::vector<double> scale(k);
    for (std::size_t j = 0; j < k; ++j) scale[j] = 1.0 / std::sqrt(es.values(j));
    detail::scale_columns(out.basis, scale);
    fix_signs(out.basis);
    return out;
}

}  // namespace recalign

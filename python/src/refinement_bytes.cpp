#include "refinement_bytes.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <vector>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/files.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::python {

namespace {

// ---- bytes: [u64 version 3][u64 passes][u64 stopped][f64 change][curves][u64 has next]
// [u64 carried][statistics][u64 has final][statistics][f64 estimate][known blocks of next]
// [known blocks of final][every restart's change][their estimates]; statistics as the CLI's
// checkpoint (verified_state.cpp): center, n, basis, sv, vsv, gram, svsv, cross (frame = gram on
// load); known blocks (what the statistics know
// of Vᵀ Bd V, restricted_statistics::blocks_known) as its put_known_blocks: [u64 count] then
// [u64 geometry][u64 D][u64 n][matrix] each; the changes and estimates as vectors. Version 2 (no
// known blocks, no history): loads with none known, as the CLI's RAVERIF4 (the next restart
// sweeps the blocks in full), and NaN for each restart before. Version 1 (no estimate
// either, the older rule's change): loads with both NaN, as the CLI's RAVERIF3.
constexpr std::uint64_t bytes_version = 3;

// The bytes handed to `out` as they are made (counted only when it is empty).
struct sink {
    const byte_sink& out;
    std::uint64_t count = 0;
    void put(const void* p, std::size_t n) {
        count += n;
        if (out && n) out(static_cast<const char*>(p), n);
    }
    void u64(std::uint64_t v) { put(&v, 8); }
    void f64(double v) { put(&v, 8); }
    void matrix(const matrix_t& m) {
        u64(m.shape(0));
        u64(m.shape(1));
        put(m.data(), m.size() * sizeof(double));
    }
    // The same bytes from a matrix on disk, copied by blocks (never read into memory whole).
    void matrix(const io::row_spill& f) {
        u64(f.rows());
        u64(f.cols());
        const std::size_t row = f.cols() * sizeof(double);
        if (!out) {
            count += static_cast<std::uint64_t>(row) * f.rows();
            return;
        }
        f.read_blocks(checkpoint::block_bytes, [&](std::size_t, std::size_t n, double* rows) { put(rows, n * row); });
    }
    void vector(const vector_t& v) {
        u64(v.size());
        put(v.data(), v.size() * sizeof(double));
    }
};

// `basis_file`: a spilled pass's basis (r.basis is then empty); r's Sxx V may be on disk too.
void put_statistics(sink& s, const restricted_statistics& r, const io::row_spill* basis_file = nullptr) {
    s.u64(static_cast<std::uint64_t>(r.center));
    s.u64(r.n);
    if (basis_file) s.matrix(*basis_file);
    else s.matrix(r.basis);
    if (r.sv_stored) s.matrix(*r.sv_stored);
    else s.matrix(r.sv);
    for (const matrix_t* m : {&r.vsv, &r.gram, &r.svsv}) s.matrix(*m);
    s.u64(r.cross ? 1 : 0);
    if (r.cross) {
        s.u64(static_cast<std::uint64_t>(r.cross->center));
        s.u64(r.cross->n);
        s.matrix(r.cross->sxy);
        s.matrix(r.cross->syy);
        s.vector(r.cross->class_counts);
    }
}

void put_known_blocks(sink& s, const restricted_statistics& r) {
    s.u64(r.blocks_known.size());
    for (const known_blocks& kb : r.blocks_known) {
        s.u64(kb.geometry);
        s.u64(kb.dim);
        s.u64(kb.n);
        s.matrix(kb.leading);
    }
}

struct refinement_reader {
    const refinement_source& src;
    std::uint64_t at = 0;  // in the bytes; errors name src.at + at
    [[noreturn]] void fail(const std::string& what) const {
        throw file_error(src.source, src.at + at, "DenoisingRefinement: " + what);
    }
    std::uint64_t left() const noexcept { return src.size - at; }
    // The next n bytes into dst (n checked against what is left by the caller).
    void read(void* dst, std::size_t n) {
        if (n > left()) fail("truncated");
        if (!n) return;  // an empty matrix's data() may be null
        if (src.fd < 0) std::memcpy(dst, src.bytes.data() + at, n);
        else checkpoint::read_at(src.fd, src.at + at, dst, n, src.source);
        at += n;
    }
    std::uint64_t u64() {
        std::uint64_t v = 0;
        read(&v, 8);
        return v;
    }
    double f64() {
        double v = 0;
        read(&v, 8);
        return v;
    }
    std::pair<std::size_t, std::size_t> shape() {
        const std::uint64_t rows = u64(), cols = u64();
        if (checked_mul(rows, cols, "DenoisingRefinement matrix") > left() / 8) fail("truncated");
        return {static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)};
    }
    matrix_t matrix() {
        const auto [rows, cols] = shape();
        matrix_t m = xt::zeros<double>({rows, cols});
        read(m.data(), m.size() * 8);
        return m;
    }
    // A matrix's rows copied by blocks into an unlinked file in $TMPDIR, never into memory whole
    // (a pass being read keeps its D x K matrices there: refinement_pass::spill).
    std::shared_ptr<const io::row_spill> spilled() {
        const auto [rows, cols] = shape();
        auto f = std::make_shared<io::row_spill>(io::spill_directory(), rows, cols);
        f->write_blocks(checkpoint::block_bytes, [&](std::size_t, std::size_t n, double* block) { read(block, n * cols * 8); });
        return f;
    }
    vector_t vector() {
        const std::uint64_t n = u64();
        if (n > left() / 8) fail("truncated");
        vector_t v = xt::zeros<double>({static_cast<std::size_t>(n)});
        read(v.data(), v.size() * 8);
        return v;
    }
    centering center() {
        const std::uint64_t c = u64();
        if (c != static_cast<std::uint64_t>(centering::uncentered) && c != static_cast<std::uint64_t>(centering::centered))
            fail("bad centering");
        return static_cast<centering>(c);
    }
    // The matrix just read (it started at `where`) is rows x cols, or empty where `empty_ok`: the
    // analyses and complete_pass index every part by the basis's D and K without checking.
    using shape_t = std::pair<std::size_t, std::size_t>;
    static shape_t shape_of(const matrix_t& m) { return {m.shape(0), m.shape(1)}; }
    void fits(shape_t m, std::uint64_t where, std::size_t rows, std::size_t cols, bool empty_ok = false) {
        if ((m.first == rows && m.second == cols) || (empty_ok && m.first * m.second == 0)) return;
        at = where;
        fail("the statistics' matrices do not fit their basis (" + std::to_string(m.first) + " x " +
             std::to_string(m.second) + " where " + std::to_string(rows) + " x " + std::to_string(cols) + ")");
    }
    void fits(const matrix_t& m, std::uint64_t where, std::size_t rows, std::size_t cols, bool empty_ok = false) {
        fits(shape_of(m), where, rows, cols, empty_ok);
    }
    // `carried`: a refinement pass being read's known statistics (D x K basis and Sxx V, read into
    // spill files: the basis into *basis_file, Sxx V into sv_stored, as refinement_pass::spill
    // leaves them; the products only of its first `carried` columns, R); none: a whole pass's
    // (K x K products, in memory).
    restricted_statistics statistics(std::optional<std::uint64_t> carried = std::nullopt,
                                     std::shared_ptr<const io::row_spill>* basis_file = nullptr) {
        restricted_statistics s;
        s.center = center();
        s.n = u64();
        std::uint64_t where[5] = {};
        shape_t basis{}, sv{};
        where[0] = at;
        if (carried) {
            *basis_file = spilled();
            basis = {(*basis_file)->rows(), (*basis_file)->cols()};
        } else {
            s.basis = matrix();
            basis = shape_of(s.basis);
        }
        where[1] = at;
        if (carried) {
            s.sv_stored = spilled();
            sv = {s.sv_stored->rows(), s.sv_stored->cols()};
        } else {
            s.sv = matrix();
            sv = shape_of(s.sv);
        }
        std::size_t i = 2;
        for (matrix_t* m : {&s.vsv, &s.gram, &s.svsv}) {
            where[i++] = at;
            *m = matrix();
        }
        const std::size_t d = basis.first, m = basis.second;
        if (carried && *carried >= m) {  // a pass being read has new directions T (fresh(): D x (K − carried))
            at = where[0];
            fail("the carried statistics do not fit their basis (" + std::to_string(*carried) + " carried of " +
                 std::to_string(m) + " columns: a pass being read has new directions)");
        }
        const std::size_t k = carried ? static_cast<std::size_t>(*carried) : m;
        fits(sv, where[1], d, m);
        fits(s.vsv, where[2], k, k);
        fits(s.gram, where[3], k, k, true);  // before products(): none
        fits(s.svsv, where[4], k, k, s.gram.size() == 0);
        if (u64()) {
            cross_moments c;
            c.center = center();
            c.n = u64();
            const std::uint64_t sxy_at = at;
            c.sxy = matrix();
            fits(c.sxy, sxy_at, k, c.sxy.shape(1));
            const std::size_t nc = c.sxy.shape(1);
            const std::uint64_t syy_at = at;
            c.syy = matrix();
            fits(c.syy, syy_at, nc, nc, true);  // class ids: Syy described by the class counts
            const std::uint64_t counts_at = at;
            c.class_counts = vector();
            if (c.class_counts.size() != (c.syy.size() ? 0 : nc)) {
                at = counts_at;
                fail("the statistics' class counts do not fit their classes");
            }
            s.cross = std::move(c);
        }
        if (s.gram.size()) s.frame = std::make_shared<const matrix_t>(s.gram);
        return s;
    }
    // What `s` (of dimension d) knows of Vᵀ Bd V: each square, at most k x k (the columns it may
    // know: a pass being read's carried ones, a result's K), of s's D and n.
    void known_blocks_of(restricted_statistics& s, std::size_t k, std::size_t d) {
        const std::uint64_t count = u64();
        if (count > left() / 32) fail("truncated");  // each entry holds at least 4 u64
        std::vector<known_blocks> known;
        for (std::uint64_t i = 0; i < count; ++i) {
            known_blocks kb;
            kb.geometry = u64();
            kb.dim = u64();
            kb.n = u64();
            const std::uint64_t where = at;
            kb.leading = matrix();
            if (kb.leading.shape(0) != kb.leading.shape(1) || kb.leading.shape(0) > k || kb.dim != d || kb.n != s.n) {
                at = where;
                fail("the known patch blocks (" + std::to_string(kb.leading.shape(0)) + " x " +
                     std::to_string(kb.leading.shape(1)) + ", D = " + std::to_string(kb.dim) + ", n = " +
                     std::to_string(kb.n) + ") do not fit their statistics (" + std::to_string(k) +
                     " known columns, D = " + std::to_string(d) + ", n = " + std::to_string(s.n) + ")");
            }
            known.push_back(std::move(kb));
        }
        s.blocks_known = std::move(known);
    }
};

}  // namespace

std::uint64_t write_refinement(const refinement_state& r, const byte_sink& out) {
    sink s{out};
    s.u64(bytes_version);
    s.u64(r.passes);
    s.u64(r.stopped ? 1 : 0);
    s.f64(r.change);
    s.vector(r.curves);
    s.u64(r.next ? 1 : 0);
    if (r.next) {
        s.u64(r.next->carried);
        put_statistics(s, r.next->known, r.next->stored_basis.get());  // [R, T], [Sxx R, 0] from their files
    }
    s.u64(r.final_ ? 1 : 0);
    if (r.final_) put_statistics(s, *r.final_);
    s.f64(r.estimate);
    // Both branches lvalues: `c ? x : restricted_statistics()` copied x, a D x K statistics (0.9 GB at
    // 224x224x3 for the final one), each time the bytes were counted or written.
    static const restricted_statistics none;
    put_known_blocks(s, r.next ? r.next->known : none);
    put_known_blocks(s, r.final_ ? *r.final_ : none);
    s.vector(r.changes);
    s.vector(r.estimates);
    return s.count;
}

std::string refinement_bytes(const refinement_state& r) {
    std::string bytes;
    bytes.reserve(static_cast<std::size_t>(write_refinement(r, byte_sink())));
    write_refinement(r, [&bytes](const char* p, std::size_t n) { bytes.append(p, n); });
    return bytes;
}

refinement_state read_refinement(const refinement_source& src) {
    refinement_reader in{src};
    const std::uint64_t version = in.u64();
    if (version < 1 || version > bytes_version) in.fail("unsupported version");
    refinement_state r;
    r.passes = in.u64();
    r.stopped = in.u64() != 0;
    r.change = in.f64();
    r.curves = in.vector();
    if (in.u64()) {
        refinement_pass p;
        const std::uint64_t carried = in.u64();
        p.known = in.statistics(carried, &p.stored_basis);  // checks carried <= K and every shape
        p.carried = static_cast<std::size_t>(carried);  // spilled, as close() leaves a pass being read
        r.next = std::move(p);
    }
    if (in.u64()) r.final_ = in.statistics();
    if (version >= 2) r.estimate = in.f64();
    else r.change = std::numeric_limits<double>::quiet_NaN();  // the older rule's: the new one needs two changes
    if (version >= 3) {
        restricted_statistics none;
        in.known_blocks_of(r.next ? r.next->known : none, r.next ? r.next->carried : 0, r.next ? r.next->dim() : 0);
        in.known_blocks_of(r.final_ ? *r.final_ : none, r.final_ ? r.final_->k() : 0, r.final_ ? r.final_->dim() : 0);
        const std::uint64_t at = in.at;
        r.changes = in.vector();
        r.estimates = in.vector();
        if (r.changes.size() != r.estimates.size() || r.changes.size() > r.passes + 1) {
            in.at = at;
            in.fail("the refinement history (" + std::to_string(r.changes.size()) + " changes, " +
                    std::to_string(r.estimates.size()) + " estimates) does not fit its " + std::to_string(r.passes) +
                    " refinement pass(es)");
        }
    } else {  // one restart per refinement pass started, and the one that stopped them: not known
        const std::uint64_t restarts = std::min<std::uint64_t>(r.passes + (r.stopped ? 1 : 0), 1u << 20);
        r.changes = xt::zeros<double>({static_cast<std::size_t>(restarts)});
        r.changes.fill(std::numeric_limits<double>::quiet_NaN());
        r.estimates = r.changes;
    }
    if (in.left()) in.fail("unexpected bytes after the state");
    if (r.stopped && !r.final_) in.fail("stopped without its result");
    if (r.next && r.final_) in.fail("both a pass being read and the result of the passes");
    return r;
}

}  // namespace recalign::python

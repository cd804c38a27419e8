#include "verified_bytes.hpp"

#include <algorithm>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <utility>
#include <vector>

#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::cli {

namespace {
void put_u64(std::string& s, std::uint64_t v) { s.append(reinterpret_cast<const char*>(&v), 8); }
}  // namespace

// A basis as bytes: [u64 rows][u64 cols][row-major doubles] (rank 0 -> every rank).
std::string matrix_bytes(const matrix_t& m) {
    std::string s;
    put_u64(s, m.shape(0));
    put_u64(s, m.shape(1));
    if (m.size()) s.append(reinterpret_cast<const char*>(m.data()), m.size() * sizeof(double));
    return s;
}

matrix_t bytes_matrix(const std::string& s) {
    std::uint64_t rows = 0, cols = 0;
    if (s.size() < 16) throw std::logic_error("verified_state: rank 0's basis is truncated");
    std::memcpy(&rows, s.data(), 8);
    std::memcpy(&cols, s.data() + 8, 8);
    if (s.size() - 16 != checked_mul(checked_mul(rows, cols, "basis"), 8, "basis"))
        throw std::logic_error("verified_state: rank 0's basis has the wrong size");
    matrix_t m = matrix_t::from_shape({static_cast<std::size_t>(rows), static_cast<std::size_t>(cols)});
    if (m.size()) std::memcpy(m.data(), s.data() + 16, s.size() - 16);  // an empty matrix's data() may be null
    return m;
}

// Restricted statistics as bytes (incremental refinement's carried and final statistics).
void put_vector(state_sink& out, const vector_t& v) {
    out.u64(v.size());
    for (double x : v) out.f64(x);
}
vector_t get_vector(source_reader& r) {
    const std::uint64_t n = r.u64();
    if (n > r.left() / 8) r.truncated();
    vector_t v = xt::zeros<double>({static_cast<std::size_t>(n)});
    for (double& x : v) x = r.f64();
    return v;
}

namespace {
// A matrix as one part, matrix_bytes's layout: [u64 16 + 8 rows cols][u64 rows][u64 cols][doubles].
void put_matrix(state_sink& out, std::size_t rows, std::size_t cols, const double* data) {
    out.u64(16 + checked_mul(checked_mul(rows, cols, "basis"), 8, "basis"));
    out.u64(rows);
    out.u64(cols);
    if (rows && cols) out.put(data, rows * cols * sizeof(double));
}
void put_matrix(state_sink& out, const matrix_t& m) { put_matrix(out, m.shape(0), m.shape(1), m.data()); }
// The same from a matrix on disk, copied by blocks (never read into memory whole).
void put_spilled(state_sink& out, const io::row_spill& f) {
    out.u64(16 + checked_mul(checked_mul(f.rows(), f.cols(), "basis"), 8, "basis"));
    out.u64(f.rows());
    out.u64(f.cols());
    out.spilled(f);
}

// Where a matrix part lies: its shape (checked against its length) and its doubles' position.
struct matrix_at {
    std::uint64_t at = 0;  // the part's file offset (errors)
    std::size_t rows = 0, cols = 0;
    std::uint64_t data = 0;  // the doubles' position in the source
    std::uint64_t bytes() const { return static_cast<std::uint64_t>(rows) * cols * 8; }
};
matrix_at next_matrix(source_reader& r) {
    matrix_at m;
    m.at = r.here();
    const std::uint64_t len = r.u64();
    if (len > r.left() || len < 16) r.truncated();
    const std::uint64_t rows = r.u64(), cols = r.u64(), room = (len - 16) / 8;
    if ((len - 16) % 8 != 0 || (rows != 0 && cols > room / rows) || rows * cols != room)
        throw file_error(r.src.name(), m.at, "a matrix of the refinement statistics (" + std::to_string(rows) + " x " +
                                                 std::to_string(cols) + ") does not fill its " + std::to_string(len) +
                                                 " bytes");
    m.rows = static_cast<std::size_t>(rows);
    m.cols = static_cast<std::size_t>(cols);
    m.data = r.pos;
    r.pos += len - 16;
    return m;
}
// Its doubles, into memory (allocated only after the shape was checked against the part's length,
// itself within the checksummed file).
matrix_t read_matrix(const state_source& src, const matrix_at& m) {
    matrix_t x = matrix_t::from_shape({m.rows, m.cols});
    if (x.size()) src.read(m.data, x.data(), static_cast<std::size_t>(m.bytes()));  // an empty matrix's data() may be null
    return x;
}
// Or into an unlinked file in `dir` (io/spill.hpp), by blocks.
std::shared_ptr<const io::row_spill> spill_matrix(const state_source& src, const matrix_at& m, const std::string& dir) {
    auto f = std::make_shared<io::row_spill>(dir, m.rows, m.cols);
    const std::size_t row = m.cols * sizeof(double);
    f->write_blocks(checkpoint::block_bytes, [&](std::size_t r0, std::size_t n, double* rows) {
        src.read(m.data + static_cast<std::uint64_t>(r0) * row, rows, n * row);
    });
    return f;
}
}  // namespace

void put_statistics(state_sink& out, const restricted_statistics& s, const refinement_pass* spilled) {
    out.part([&](state_sink& o) {
        o.u64(static_cast<std::uint64_t>(s.center));
        o.u64(s.n);
        if (spilled && spilled->spilled()) put_spilled(o, *spilled->stored_basis);
        else put_matrix(o, s.basis);
        if (s.sv_stored) put_spilled(o, *s.sv_stored);
        else put_matrix(o, s.sv);
        for (const matrix_t* m : {&s.vsv, &s.gram, &s.svsv}) put_matrix(o, *m);
        o.u64(s.cross ? 1 : 0);
        if (s.cross) {
            o.u64(static_cast<std::uint64_t>(s.cross->center));
            o.u64(s.cross->n);
            put_matrix(o, s.cross->sxy);
            put_matrix(o, s.cross->syy);
            put_vector(o, s.cross->class_counts);
        }
    });
}

// complete_pass and the analyses index every matrix by the basis's D and K without checking (the
// carried part has no checksum of its own): a matrix that does not fit is refused at its offset,
// before any matrix is read.
refinement_pass read_statistics(const state_source& src, std::optional<std::uint64_t> carried,
                                const std::string& spill_dir) {
    const std::string& source = src.name();
    source_reader r{src, "verified state (refinement statistics)"};
    auto centering_of = [&](const char* what) {
        const std::uint64_t where = r.here(), c = r.u64();
        if (c != 1 && c != 2)
            throw file_error(source, where, std::string("the refinement statistics' ") + what + " is " +
                                                std::to_string(c) + ", neither uncentered (1) nor centered (2)");
        return static_cast<centering>(c);
    };
    auto fits = [&](const matrix_at& m, const char* what, std::size_t rows, std::size_t cols, bool empty_ok) {
        if ((m.rows == rows && m.cols == cols) || (empty_ok && m.rows * m.cols == 0)) return;
        throw file_error(source, m.at, std::string("the refinement statistics' matrices do not fit their basis (") +
                                           what + " " + std::to_string(m.rows) + " x " + std::to_string(m.cols) +
                                           " where " + std::to_string(rows) + " x " + std::to_string(cols) + ")");
    };
    restricted_statistics s;
    s.center = centering_of("centering");
    s.n = r.u64();
    matrix_at at[5];
    for (matrix_at& m : at) m = next_matrix(r);
    const std::size_t d = at[0].rows, m = at[0].cols;
    if (carried && *carried >= m)  // a pass being read has new directions (fresh(): D x (K - carried))
        throw file_error(source, at[0].at, "the carried statistics do not fit their basis (" + std::to_string(*carried) +
                                               " carried of " + std::to_string(m) +
                                               " columns: a pass being read has new directions)");
    const std::size_t k = carried ? static_cast<std::size_t>(*carried) : m;
    fits(at[1], "Sxx V", d, m, false);
    fits(at[2], "V' Sxx V", k, k, false);
    fits(at[3], "Gram", k, k, true);  // before its products: none
    fits(at[4], "Gram products", k, k, at[3].rows * at[3].cols == 0);
    std::optional<cross_moments> cross;
    matrix_at sxy, syy;
    std::uint64_t counts_at = 0;
    vector_t counts;
    if (r.u64()) {
        cross.emplace();
        cross->center = centering_of("cross moments' centering");
        cross->n = r.u64();
        sxy = next_matrix(r);
        fits(sxy, "Sxy", k, sxy.cols, false);
        syy = next_matrix(r);
        fits(syy, "Syy", sxy.cols, sxy.cols, true);  // class ids: Syy described by the class counts
        counts_at = r.here();
        counts = get_vector(r);
        if (counts.size() != (syy.rows * syy.cols != 0 ? 0 : sxy.cols))
            throw file_error(source, counts_at, "the refinement statistics' class counts do not fit their classes");
    }
    if (r.left()) r.truncated();
    refinement_pass p;
    if (carried) {
        p.stored_basis = spill_matrix(src, at[0], spill_dir);
        s.sv_stored = spill_matrix(src, at[1], spill_dir);
        p.carried = static_cast<std::size_t>(*carried);
    } else {
        s.basis = read_matrix(src, at[0]);
        s.sv = read_matrix(src, at[1]);
    }
    s.vsv = read_matrix(src, at[2]);
    s.gram = read_matrix(src, at[3]);
    s.svsv = read_matrix(src, at[4]);
    if (cross) {
        cross->sxy = read_matrix(src, sxy);
        cross->syy = read_matrix(src, syy);
        cross->class_counts = std::move(counts);
        s.cross = std::move(cross);
    }
    if (s.gram.size()) s.frame = std::make_shared<const matrix_t>(s.gram);
    p.known = std::move(s);
    return p;
}

void put_known_blocks(state_sink& out, const restricted_statistics& s) {
    out.part([&](state_sink& o) {
        o.u64(s.blocks_known.size());
        for (const known_blocks& kb : s.blocks_known) {
            o.u64(kb.geometry);
            o.u64(kb.dim);
            o.u64(kb.n);
            put_matrix(o, kb.leading);
        }
    });
}

void read_known_blocks(const state_source& src, restricted_statistics& s, std::size_t k, std::size_t d) {
    source_reader r{src, "verified state (known patch blocks)"};
    const std::uint64_t count_at = r.here(), count = r.u64();
    if (count > r.left() / 32) r.truncated();  // each entry holds at least 4 u64
    std::vector<known_blocks> known;
    std::vector<matrix_at> at;
    for (std::uint64_t i = 0; i < count; ++i) {
        known_blocks kb;
        kb.geometry = r.u64();
        kb.dim = r.u64();
        kb.n = r.u64();
        const matrix_at m = next_matrix(r);
        if (m.rows != m.cols || m.rows > k || kb.dim != d || kb.n != s.n)
            throw file_error(src.name(), m.at, "the known patch blocks (" + std::to_string(m.rows) + " x " +
                                                   std::to_string(m.cols) + ", D = " + std::to_string(kb.dim) +
                                                   ", n = " + std::to_string(kb.n) + ") do not fit their statistics (" +
                                                   std::to_string(k) + " known columns, D = " +
                                                   std::to_string(d) + ", n = " + std::to_string(s.n) + ")");
        known.push_back(std::move(kb));
        at.push_back(m);
    }
    if (r.left()) throw file_error(src.name(), count_at, "unexpected bytes after the known patch blocks");
    for (std::size_t i = 0; i < known.size(); ++i) known[i].leading = read_matrix(src, at[i]);
    s.blocks_known = std::move(known);
}

}  // namespace recalign::cli

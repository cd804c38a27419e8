// Non-owning views of a minibatch (rows = samples) and of its targets, so that one
// update() serves uint8 / float32 / float64 input from C++, NumPy or a file reader
// without a copy on the caller's side.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "recalign/core/xt.hpp"

namespace recalign {

enum class dtype : std::uint8_t { u8 = 1, f32 = 2, f64 = 3 };

const char* dtype_name(dtype t);
std::size_t dtype_size(dtype t);

// Order of an image's values in a flat row: hwc = pixel-major (PIL / NumPy), chw = one plane
// per channel (torch's ToTensor). Shared by the noise models' image shapes and the image readers.
enum class image_layout : std::uint8_t { hwc = 1, chw = 2 };
const char* image_layout_name(image_layout l);

// A row-major (rows x cols) block of samples, contiguous. `scale` multiplies every value
// (e.g. 1/255 for pixels stored as uint8): the conversion helpers below apply it, in double
// after converting the stored value (x_double * scale), so a reader hands its rows over in
// their own type and every accumulator sees the scaled values exactly once.
struct batch_view {
    const void* data = nullptr;
    dtype type = dtype::f64;
    std::size_t rows = 0;
    std::size_t cols = 0;
    double scale = 1.0;

    batch_view() = default;
    batch_view(const double* p, std::size_t r, std::size_t c) : data(p), type(dtype::f64), rows(r), cols(c) {}
    batch_view(const float* p, std::size_t r, std::size_t c) : data(p), type(dtype::f32), rows(r), cols(c) {}
    batch_view(const std::uint8_t* p, std::size_t r, std::size_t c) : data(p), type(dtype::u8), rows(r), cols(c) {}
    template <class T, class A>
    batch_view(const xt::xtensor<T, 2, xt::layout_type::row_major, A>& m)
        : batch_view(m.data(), m.shape(0), m.shape(1)) {}
};

enum class label_type : std::uint8_t { u8 = 1, i32 = 2, i64 = 3 };

// Targets of a batch: either integer class ids (one-hot implied) or dense target rows.
struct target_view {
    enum class kind : std::uint8_t { none, class_ids, dense };
    kind form = kind::none;
    const void* data = nullptr;
    label_type labels = label_type::i64;  // for class_ids
    batch_view dense;                       // for dense rows
    std::size_t rows = 0;

    static target_view none() { return {}; }
    static target_view class_ids(const std::uint8_t* p, std::size_t n) { return ids(p, label_type::u8, n); }
    static target_view class_ids(const std::int32_t* p, std::size_t n) { return ids(p, label_type::i32, n); }
    static target_view class_ids(const std::int64_t* p, std::size_t n) { return ids(p, label_type::i64, n); }
    static target_view dense_rows(const batch_view& b) {
        target_view t;
        t.form = kind::dense;
        t.dense = b;
        t.rows = b.rows;
        return t;
    }

private:
    static target_view ids(const void* p, label_type lt, std::size_t n) {
        target_view t;
        t.form = kind::class_ids;
        t.data = p;
        t.labels = lt;
        t.rows = n;
        return t;
    }
};

// Converts a batch to a contiguous double buffer (rows x expected_cols), times its scale,
// checking the width and that every (scaled) value is finite. Throws input_error naming the row (counted from
// first_row, so a caller streaming a file can report the row in the file) and the column.
// `out` must hold rows * expected_cols doubles; nothing else is touched.
void to_double_checked(const batch_view& b, std::size_t expected_cols, double* out,
                       std::uint64_t first_row = 0);

// Same for single precision (the opt-in float32 kernel path).
void to_float_checked(const batch_view& b, std::size_t expected_cols, float* out,
                      std::uint64_t first_row = 0);

// One fused pass for the accumulators' hot path: out = row * scale - shift (shift: one value per
// column, e.g. the running mean), column_sums += Σ_rows out; checks the width and that every
// value is finite (a non-finite value makes its column sum non-finite, so the check costs
// nothing until it fires; then the offending row and column are located and named).
// Row r of the output starts at out + r * out_stride (out_stride >= expected_cols), so a
// caller can lay further columns (e.g. targets) beside the inputs.
void to_shifted_checked(const batch_view& b, std::size_t expected_cols, const double* shift, double* out,
                        std::size_t out_stride, double* column_sums, std::uint64_t first_row = 0);
void to_shifted_checked(const batch_view& b, std::size_t expected_cols, const double* shift, float* out,
                        std::size_t out_stride, double* column_sums, std::uint64_t first_row = 0);

// Rows [first, first + count) of a batch, as their own view (no copy).
batch_view batch_rows(const batch_view& b, std::size_t first, std::size_t count);
// Validates a whole batch in row chunks of `chunk_rows` through to_shifted_checked (width,
// finite values, naming the row) and adds its shifted column sums to column_sums, converting
// only one chunk at a time into `scratch` (resized to chunk_rows x expected_cols): the check of
// a wide batch (high D) without a rows x D double copy of it.
void check_shifted_sums(const batch_view& b, std::size_t expected_cols, const double* shift, double* column_sums,
                        std::vector<double>& scratch, std::size_t chunk_rows, std::uint64_t first_row = 0);
// check_shifted_sums's column sums for the columns [lo, hi) only, with the same additions in the
// same order (so the same bits), and no scratch: what two threads run on the two halves of the
// columns once the batch's shape is checked (a zero-row check_shifted_sums). Throws nothing:
// returns false when a value is not finite (then check_shifted_sums names it).
bool shifted_sums_columns(const batch_view& b, const double* shift, std::size_t chunk_rows, std::size_t lo,
                          std::size_t hi, double* column_sums) noexcept;
// out(r, j) = b(r, cols[j]) * scale - shift[cols[j]] for every row r and j < count (row-major,
// rows x count): a block of columns of a batch already validated (check_shifted_sums), converted
// on its own. `cols` may be null: then columns first_col .. first_col + count - 1.
void gather_shifted(const batch_view& b, const double* shift, const std::size_t* cols, std::size_t first_col,
                    std::size_t count, double* out);
// The same for the output's columns j in [lo, hi) only (row stride still `count`): two threads
// converting the two halves of one block write exactly the elements, and the bits, of one call.
void gather_shifted(const batch_view& b, const double* shift, const std::size_t* cols, std::size_t first_col,
                    std::size_t count, std::size_t lo, std::size_t hi, double* out);
// The shift of an exact streaming scatter (MATH.md §1): the state's running mean (its first
// `width` values) once it has seen rows, else the batch's own column mean, computed in two
// passes over the batch (about its first row) and checked, naming the row of a non-finite value
// (zeros when the batch is empty or of the wrong width: its conversion refuses it next).
// Returns `width` >= expected_cols values; columns past expected_cols (e.g. targets) are left
// to the caller. Scattering about a shift near the mean, then correcting by a rank-one term,
// is exact to rounding where raw moments would cancel.
std::vector<double> scatter_shift(const batch_view& b, std::size_t expected_cols, std::size_t width,
                                  const double* running_mean, bool seen, std::uint64_t first_row = 0);

// Expands targets to dense (rows x classes) doubles: one-hot for class ids (checked to lie
// in [0, classes)), copied and checked finite for dense rows.
void targets_to_double_checked(const target_view& t, std::size_t rows, std::size_t classes,
                               double* out, std::uint64_t first_row = 0);

// Class ids as indices into [0, classes), one per row: refuses targets that are not class
// ids, a label count other than `rows` and a label out of range, naming the row (counted from
// first_row). `out` must hold `rows` indices; nothing else is touched.
void class_indices_checked(const target_view& t, std::size_t rows, std::size_t classes, std::size_t* out,
                           std::uint64_t first_row = 0);

}  // namespace recalign

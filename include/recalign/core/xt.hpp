// The one place that includes xtensor: every other header includes this one, so that the
// xtensor configuration (and its compile cost) is decided in a single spot.
#pragma once

#include <xtensor/xadapt.hpp>
#include <xtensor/xtensor.hpp>
#include <xtensor/xview.hpp>

namespace recalign {

using vector_t = xt::xtensor<double, 1>;
using matrix_t = xt::xtensor<double, 2>;  // row-major

}  // namespace recalign

// Umbrella header: everything public in recalign.
#pragma once

#include "recalign/core/batch.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/rng.hpp"
#include "recalign/align/alignment.hpp"
#include "recalign/io/checkpoint.hpp"
#include "recalign/io/datasets.hpp"
#include "recalign/io/idx.hpp"
#include "recalign/sketch/frequent_directions.hpp"
#include "recalign/sketch/nystrom_sketch.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/spectrum.hpp"
#include "recalign/stats/moments.hpp"

#include "engine.hpp"

#include <sstream>
#include <stdexcept>

#include "recalign/core/errors.hpp"

namespace recalign::cli {

bool method_available(const std::string& method) { return method == "exact"; }

engine::engine(const run_config& config) : config_(config) {
    if (config.method == "exact") {
        moment_options o;
        o.dim = static_cast<std::size_t>(config.dim);
        o.targets = config.classes ? target_mode::class_ids : target_mode::none;
        o.classes = static_cast<std::size_t>(config.classes);
        moments_.emplace(o);
    } else {
        throw std::invalid_argument("--method " + config.method + " is not available in this build");
    }
}

void engine::update(const io::source_batch& b) {
    if (moments_) {
        if (config_.classes) moments_->update(b.view(), b.targets(), b.first_row);
        else moments_->update(b.view(), b.first_row);
    }
}

void engine::merge(const engine& other) {
    if (const std::string d = config_.difference(other.config_); !d.empty())
        throw std::invalid_argument("cannot merge: " + d);
    if (moments_) moments_->merge(*other.moments_);
}

std::string engine::save() const {
    std::ostringstream os(std::ios::binary);
    if (moments_) moments_->save(os);
    return os.str();
}

void engine::load(const std::string& bytes, const std::string& source) {
    std::istringstream is(bytes, std::ios::binary);
    if (moments_) {
        moment_accumulator m = checkpoint::load_state<moment_accumulator>(is, source + " (nested accumulator)");
        if (m.dim() != config_.dim || m.classes() != config_.classes)
            throw file_error(source, checkpoint::header_bytes, "nested accumulator disagrees with the run configuration");
        moments_.emplace(std::move(m));
    }
}

std::uint64_t engine::n() const { return moments_ ? moments_->n() : 0; }

spectrum engine::get_spectrum(centering c) const {
    if (moments_) return exact_spectrum(*moments_, c);
    throw std::logic_error("no spectrum");
}

const moment_accumulator& engine::moments() const {
    if (!moments_) throw std::logic_error("this run has no exact moments");
    return *moments_;
}

}  // namespace recalign::cli

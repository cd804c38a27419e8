// JSON renderers: one document per command (field names are part of the CLI's interface,
// README "JSON").
#include <nlohmann/json.hpp>

#include <cmath>
#include <cstdio>

#include "render.hpp"

namespace recalign::cli {

using json = nlohmann::ordered_json;

namespace {

json number_or_null(double v) { return std::isnan(v) ? json(nullptr) : json(v); }

json input_json(const run_state& st) {
    json a = json::array();
    for (const input_segment& s : st.segments) {
        json o;
        o["images"] = s.images.path;
        o["labels"] = s.labels.empty() ? json(nullptr) : json(s.labels.path);
        o["format"] = s.format;
        o["first_row"] = s.first_row;
        o["rows"] = s.rows_done;
        if (!s.class_names.empty()) o["class_names"] = s.class_names;
        if (!s.decoding.empty()) o["decoding"] = s.decoding;
        // Image formats: always present (an empty list says that nothing was skipped).
        if (!s.decoding.empty() && s.format != "cifar10" && s.format != "cifar100") {
            json skipped = json::array();
            for (const io::skipped_file& f : s.skipped)
                skipped.push_back({{"index", f.index}, {"path", f.path}, {"reason", f.reason}});
            o["skipped_files"] = skipped;
        }
        a.push_back(o);
    }
    return a;
}

// "exact_for" and "sketch_error" of a sketch route (README "JSON"): what the numbers are exact
// for (null: estimates from the sketch's eigenvalues) and the sketch's error information.
void add_sketch(json& j, const std::optional<sketch_verification>& v, const char* exact_for) {
    if (!v) return;
    j["exact_for"] = v->verified ? json(exact_for) : json(nullptr);
    json e;
    e["method"] = v->method;
    e["test_matrix"] = v->test_matrix.empty() ? json(nullptr) : json(v->test_matrix);
    e["rank"] = v->rank;
    e["verified"] = v->verified;
    e["verification_passes"] = v->extra_passes;
    e["verification_columns"] = v->columns;
    e["error_bound"] = number_or_null(v->error_bound);
    e["error_estimate"] = number_or_null(v->error_estimate);
    e["relative_estimate"] = number_or_null(v->relative_estimate);
    e["sketch_passes"] = v->sketch_passes;
    e["max_passes"] = v->max_passes;
    e["tolerance"] = number_or_null(v->tolerance);
    e["tolerance_met"] = std::isnan(v->tolerance) ? json(nullptr) : json(v->relative_estimate <= v->tolerance);
    if (v->refines) {
        json f;
        f["budget"] = v->refine_budget;
        f["passes"] = v->refine_passes;
        f["stopped"] = v->refine_converged ? "converged" : "budget";
        f["change"] = number_or_null(v->refine_change);
        f["estimate"] = number_or_null(v->refine_estimate);
        f["threshold"] = number_or_null(v->refine_threshold);
        json changes = json::array(), estimates = json::array();
        for (double x : v->refine_changes) changes.push_back(number_or_null(x));
        for (double x : v->refine_estimates) estimates.push_back(number_or_null(x));
        f["changes"] = changes;  // every restart's, in turn (null: not judged yet, or not known)
        f["estimates"] = estimates;
        e["refinement"] = f;
    }
    if (v->verified) {
        // Davis–Kahan: sin ∠(y_j, eigenvector j) <= residual_j / gap_j.
        e["ritz_values"] = to_vec(v->ritz_values);
        e["residuals"] = to_vec(v->residuals);
    }
    j["sketch_error"] = e;
}

// NaN becomes null (nlohmann would write null anyway; replace guards invalid UTF-8 in paths).
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace) + "\n"; }

}  // namespace

std::string render_json(const align_result& r) {
    const alignment_result& a = r.curve;
    json j;
    j["n"] = a.n;
    j["d"] = a.dim;
    j["classes"] = a.classes;
    j["measure"] = measure_name(a.measure);
    j["centered"] = a.center == centering::centered;
    j["method"] = r.run.config.method;
    j["eigenvalues"] = to_vec(a.eigenvalues);
    j["alignment"] = to_vec(a.curve);
    j["contributions"] = to_vec(a.contributions);
    j["normaliser"] = a.normaliser;
    j["skipped"] = a.skipped;
    j["max_k"] = a.max_k;
    add_sketch(j, r.sketch, "returned subspace");
    j["scale"] = r.run.config.scale;
    j["input"] = input_json(r.run);
    return dump(j);
}

std::string render_json(const spectrum_result& r) {
    const spectrum& s = r.spec;
    json j;
    j["n"] = s.n;
    j["d"] = s.dim;
    j["centered"] = s.center == centering::centered;
    j["method"] = r.run.config.method;
    j["eigenvalues"] = to_vec(s.eigenvalues);
    j["explained"] = to_vec(s.explained);
    j["total"] = s.total;
    j["error_bound"] = number_or_null(s.error_bound);
    j["error_estimate"] = number_or_null(s.error_estimate);
    add_sketch(j, r.sketch, "returned subspace");  // null: the sketch's own estimates (README "JSON")
    j["scale"] = r.run.config.scale;
    j["input"] = input_json(r.run);
    return dump(j);
}

std::string render_json(const project_result& r) {
    json j;
    j["n"] = r.n;
    j["d"] = r.dim;
    j["centered"] = r.center == centering::centered;
    j["method"] = r.run.config.method;
    j["variance"] = r.variance;
    j["k"] = r.k;
    j["explained"] = r.explained;
    // k and explained: of the subspace drawn (verified), or from the sketch's estimates (null)
    if (r.run.config.method != "exact") j["exact_for"] = r.verified ? json("returned subspace") : json(nullptr);
    j["images"] = r.images;
    j["rows"] = r.rows;
    j["png"] = r.png;
    return dump(j);
}

std::string render_json(const tradeoff_cli_result& r) {
    const tradeoff_result& t = r.t;
    // An array of points (readers index it), each with the run's facts: n, k, and the input
    // rows it read (as align's and denoise's "input"), repeated per point.
    const json input = input_json(r.run);
    json a = json::array();
    for (const tradeoff_point& p : t.points) {
        json o;
        o["lambda"] = p.lambda;
        o["supervised_loss"] = p.supervised_loss;
        o["reconstruction_loss"] = p.reconstruction_loss;
        o["loss"] = p.loss;
        o["k"] = t.k;
        o["centered"] = t.center == centering::centered;
        o["n"] = t.n;
        if (r.sketch) {
            // The losses of the V returned (Rayleigh–Ritz): upper bounds on the optimal losses.
            add_sketch(o, r.sketch, "returned encoder");
            o["bound"] = r.sketch->verified ? json("upper") : json(nullptr);
        }
        if (r.refinement) {
            json c;
            c["passes"] = r.refinement->passes;
            c["max_passes"] = r.refinement->max_passes;
            c["stopped"] = r.refinement->stopped ? "converged" : "budget";  // as denoise's refinement says it
            c["residual"] = r.refinement->residual;
            c["excess_estimate"] = number_or_null(r.refinement->estimate);
            o["refinement"] = c;
        }
        o["input"] = input;
        a.push_back(o);
    }
    return dump(a);
}

std::string render_json(const denoise_result& r) {
    const tracker_report& rep = r.report;
    json j;
    j["n"] = rep.n;
    j["d"] = r.dim;
    j["classes"] = r.classes;
    j["measure"] = measure_name(r.measure);
    j["centered"] = r.center == centering::centered;
    j["method"] = r.run.config.method;
    j["clean"] = to_vec(rep.clean.curve);
    json a = json::array();
    for (const tracker_noise_report& nr : rep.noises) {
        json e;
        e["spec"] = nr.spec;
        e["alignment"] = to_vec(nr.denoising.curve);
        e["relative"] = to_vec(nr.denoising.relative_difference);
        e["impact"] = to_vec(nr.impact.distance);
        e["impact_normalised"] = to_vec(nr.impact.normalised);
        // The curve stops at max_k: V* has `informative` directions, beyond which it is arbitrary.
        e["max_k"] = nr.denoising.max_k;
        e["informative"] = nr.denoising.subspace.informative;
        e["monte_carlo"] = nr.monte_carlo;
        e["g_stderr_fro"] = nr.monte_carlo ? json(nr.g_stderr_fro) : json(nullptr);
        a.push_back(e);
    }
    j["noises"] = a;
    add_sketch(j, r.sketch, "returned subspaces");
    j["input"] = input_json(r.run);
    return dump(j);
}

std::string render_json(const info_result& r) {
    json j;
    j["file"] = r.file;
    j["kind"] = r.kind;
    j["format_version"] = r.version;
    j["dim"] = r.dim;
    j["aux"] = r.aux;
    j["config_hash"] = hex(r.config_hash);
    j["payload_bytes"] = r.payload_bytes;
    j["file_bytes"] = r.file_bytes;
    if (r.run) {
        j["command"] = r.command;
        j["method"] = r.method;
        j["classes"] = r.classes;
        j["scale"] = r.scale;
        if (r.method != "exact") {
            j["rank"] = r.rank;
            j["passes"] = r.passes;
            j["seed"] = r.seed;
            j["test_matrix"] = r.method == "nystrom" ? json(r.test_matrix) : json(nullptr);
        }
    }
    j["n"] = r.n;
    if (r.has_classes && !r.run) j["classes"] = r.classes;
    if (!r.run) return dump(j);
    j["complete"] = r.complete;
    j["verified"] = r.verified;
    j["verification_passes"] = r.passes_known ? json(r.verification_passes) : json(nullptr);
    j["refinement_stopped"] = r.refinement_stopped;
    j["planned_verification_passes"] =
        !r.passes_known ? json(nullptr) : json(r.refinement_stopped ? r.planned_verification_passes : r.verification_passes);
    j["rows_per_pass"] = r.rows_per_pass;
    j["pending"] = r.pending.empty() ? json(nullptr) : json(r.pending);
    json segs = json::array();
    for (const info_segment& s : r.segments) {
        json o;
        o["images"] = s.images;
        o["images_bytes"] = s.images_bytes;
        o["images_hash"] = hex(s.images_hash);
        o["labels"] = s.labels.empty() ? json(nullptr) : json(s.labels);
        o["format"] = s.format;
        o["first_row"] = s.first_row;
        o["rows_total"] = s.rows_total;
        o["rows_done"] = s.rows_done;
        o["batch"] = s.batch;
        o["pass"] = s.pass;
        if (!s.decoding.empty()) o["decoding"] = s.decoding;
        if (!s.class_names.empty()) o["class_names"] = s.class_names;
        if (!s.skipped.empty()) {
            json skipped = json::array();
            for (const io::skipped_file& f : s.skipped)
                skipped.push_back({{"index", f.index}, {"path", f.path}, {"reason", f.reason}});
            o["skipped_files"] = skipped;
        }
        segs.push_back(o);
    }
    j["segments"] = segs;
    return dump(j);
}

}  // namespace recalign::cli

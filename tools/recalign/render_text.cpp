// Text renderers: the tables a user reads on a terminal.
#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <limits>

#include "options.hpp"
#include "render.hpp"
#include "recalign/spectral/eigen.hpp"

namespace recalign::cli {

namespace {

void appendf(std::string& out, const char* fmt, ...) __attribute__((format(printf, 2, 3)));
void appendf(std::string& out, const char* fmt, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    const int n = std::vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    if (n > 0) out.append(buf, std::min<std::size_t>(static_cast<std::size_t>(n), sizeof buf - 1));
}

// A refinement change or estimate: inf is "not judged yet" (the JSON's null), NaN a restart from
// before the resume of an older checkpoint, which did not record it.
std::string judged(double x) {
    if (std::isnan(x)) return "unrecorded";
    if (!std::isfinite(x)) return "not judged";
    char b[32];
    std::snprintf(b, sizeof b, "%.3g", x);
    return b;
}

std::string g4(double x) {
    char b[32];
    std::snprintf(b, sizeof b, "%.4g", x);
    return b;
}

// The value at k, or "-" past the end of a curve.
std::string at(const vector_t& v, std::size_t k, const char* fmt) {
    if (k > v.size()) return "-";
    char b[64];
    std::snprintf(b, sizeof b, fmt, v(k - 1));
    return b;
}

// One line on what a sketch route's numbers are.
void sketch_note(std::string& s, const std::optional<sketch_verification>& v, const char* what) {
    if (!v) return;
    std::string err;
    char b[128];
    if (!std::isnan(v->error_bound)) std::snprintf(b, sizeof b, "; the sketch's error bound ‖C − Ĉ‖₂ <= %.4g", v->error_bound);
    else if (!std::isnan(v->error_estimate)) std::snprintf(b, sizeof b, "; the sketch's error estimate ‖C − Ĉ‖_F ≈ %.4g", v->error_estimate);
    else b[0] = 0;
    err = b;
    if (!std::isnan(v->tolerance)) {
        std::snprintf(b, sizeof b, "; --tolerance %.3g %s after %zu of at most %zu passes (‖C − Ĉ‖_F / tr C ≈ %.3g)",
                      v->tolerance, v->relative_estimate <= v->tolerance ? "met" : "NOT met", v->sketch_passes,
                      v->max_passes, v->relative_estimate);
        err += b;
    }
    const std::string kind = v->method + (v->test_matrix == "sparse" ? " (sparse sign test matrix)" : "");
    if (v->verified) {
        double worst = 0.0;
        for (std::size_t j = 0; j < v->residuals.size(); ++j)
            if (v->ritz_values(0) > 0) worst = std::max(worst, v->residuals(j) / v->ritz_values(0));
        appendf(s, "(%s sketch, rank %zu, verified by %zu more pass(es) on %zu directions: %s%s; largest residual "
                   "‖Sxx y − θ y‖ / θ_1 = %.3g: how far the returned directions are from eigenvectors; their angle to "
                   "the true top subspace is at most this over the eigenvalue gap, Davis–Kahan)\n",
                kind.c_str(), v->rank, v->extra_passes, v->columns, what, err.c_str(), worst);
        if (v->refines)
            appendf(s, "(refinement: %zu of at most %zu pass(es) (--refine), %s; the largest change of the relative "
                       "differences and impacts / 5 (K <= 64) between the last two passes compared: %s; ESTIMATED "
                       "distance of those curves from where more passes would take them, from the last two changes: "
                       "%s (not the method's own error), the rule stops below %.3g)\n",
                    v->refine_passes, v->refine_budget,
                    v->refine_converged ? "stopped early: converged" : "the budget was spent",
                    judged(v->refine_change).c_str(), judged(v->refine_estimate).c_str(), v->refine_threshold);
        if (v->refines && !v->refine_changes.empty()) {
            std::string changes, estimates;
            for (std::size_t i = 0; i < v->refine_changes.size(); ++i) {
                appendf(changes, "%s%s", i ? ", " : "", judged(v->refine_changes[i]).c_str());
                appendf(estimates, "%s%s", i ? ", " : "", judged(v->refine_estimates[i]).c_str());
            }
            appendf(s, "(each restart in turn: changes %s; estimates %s)\n", changes.c_str(), estimates.c_str());
        }
    } else {
        appendf(s, "(%s sketch, rank %zu, NOT verified: estimates read off the sketch's eigenvalues%s; drop "
                   "--no-verify for exact values)\n", kind.c_str(), v->rank, err.c_str());
    }
}

}  // namespace

std::string hex(std::uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%016llx", (unsigned long long)v);
    return b;
}

void print_stdout(const std::string& text) {
    // A full disk or a closed pipe must not pass for success: the results never arrived.
    errno = 0;
    const bool ok = std::fwrite(text.data(), 1, text.size(), stdout) == text.size() && std::fflush(stdout) == 0;
    if (!ok || std::ferror(stdout)) {
        const int e = errno;
        std::clearerr(stdout);
        throw user_error(std::string("cannot write the results to standard output: ") +
                         (e ? std::strerror(e) : "write error"));
    }
}

std::string render_text(const align_result& r) {
    const alignment_result& a = r.curve;
    std::string s;
    appendf(s, "n = %llu samples, D = %zu, C = %zu classes; method %s, %s, measure %s\n", (unsigned long long)a.n, a.dim,
            a.classes, route_name(a.method), centering_name(a.center), measure_name(a.measure));
    appendf(s, "%6s  %12s  %14s\n", "k", "alignment", "eigenvalue/n");
    std::vector<std::size_t> ks;
    for (std::size_t k = 1; k <= a.max_k; k *= 2) ks.push_back(k);
    if (a.max_k && (ks.empty() || ks.back() != a.max_k)) ks.push_back(a.max_k);
    for (std::size_t k : ks)
        appendf(s, "%6zu  %12.6f  %14.6g\n", k, a.curve(k - 1), a.eigenvalues(k - 1) / static_cast<double>(a.n));
    appendf(s, "(%zu directions under the eigenvalue tolerance skipped)\n", a.skipped);
    sketch_note(s, r.sketch, "the alignments and eigenvalues are exact for the subspaces printed");
    return s;
}

std::string render_text(const spectrum_result& r) {
    const spectrum& sp = r.spec;
    std::string s;
    appendf(s, "n = %llu samples, D = %zu; method %s, %s\n", (unsigned long long)sp.n, sp.dim, route_name(sp.method),
            centering_name(sp.center));
    appendf(s, "total second moment per sample: %.6g\n", sp.total / static_cast<double>(std::max<std::uint64_t>(sp.n, 1)));
    appendf(s, "%6s  %14s  %10s\n", "k", "eigenvalue/n", "explained");
    for (std::size_t k = 1; k <= std::min<std::size_t>(sp.rank(), 10); ++k)
        appendf(s, "%6zu  %14.6g  %10.6f\n", k, sp.eigenvalues(k - 1) / static_cast<double>(sp.n), sp.explained(k - 1));
    for (double f : {0.5, 0.75, 0.9, 0.95, 0.99}) {
        const std::size_t k = k_for_fraction(sp.eigenvalues, sp.total, f);
        if (k < sp.rank() && sp.total > 0) appendf(s, "%4.0f%% of the total in the top %zu directions\n", f * 100, k);
    }
    if (r.sketch && r.sketch->verified) {
        sketch_note(s, r.sketch,
                    "the eigenvalues are the exact second moments along the returned directions (Ritz values, each "
                    "at most the true eigenvalue of its rank), the explained fractions and direction counts exact for "
                    "the returned subspaces; the total is exact");
    } else if (sp.method != route::exact) {
        // A sketch's eigenvalues are its own estimates (Frequent Directions': biased low): say so,
        // with the sketch's error in the units of the table; the total is tracked exactly.
        const double n = static_cast<double>(std::max<std::uint64_t>(sp.n, 1));
        std::string err;
        if (!std::isnan(sp.error_bound))
            err = "each below the true one by at most " + g4(sp.error_bound / n) + " per sample (the sketch's bound)";
        else if (!std::isnan(sp.error_estimate))
            err = "the sketch's error estimate ‖C − Ĉ‖_F ≈ " + g4(sp.error_estimate / n) + " per sample";
        const bool sparse = r.sketch && r.sketch->test_matrix == "sparse";
        appendf(s, "(%s%s sketch, rank %zu: the eigenvalues, explained fractions and direction counts are ESTIMATES read "
                   "off the sketch%s%s; the total is exact; --method exact gives exact values)\n",
                route_name(sp.method), sparse ? " (sparse sign test matrix)" : "", sp.rank(), err.empty() ? "" : ", ",
                err.c_str());
    }
    return s;
}

std::string render_text(const project_result& r) {
    std::string s;
    appendf(s, "top subspace: k = %zu of %zu directions explain %.4f of the %s total (asked %.4f)%s\n", r.k, r.dim,
            r.explained, centering_name(r.center), r.variance,
            r.run.config.method == "exact" ? ""
            : r.verified ? (" (" + r.run.config.method + " sketch, verified by one more pass: exact for the subspace "
                            "drawn, the span of its top k Ritz vectors; k was chosen from their exact Ritz values)")
                               .c_str()
                         : (" (ESTIMATED from the " + r.run.config.method +
                            " sketch's eigenvalues, which are its own estimates; k was chosen from them)")
                               .c_str());
    std::string rows = "originals";
    for (std::size_t i = 1; i < r.rows.size(); ++i) rows += ", " + r.rows[i];
    appendf(s, "wrote %s: %zu images; rows: %s\n", r.png.c_str(), r.images, rows.c_str());
    return s;
}

std::string render_text(const tradeoff_cli_result& r) {
    const tradeoff_result& t = r.t;
    std::string s;
    appendf(s, "n = %llu samples, D = %zu, C = %zu classes, K = %zu (%zu null directions of Sxx dropped); %s\n",
            (unsigned long long)t.n, t.dim, t.classes, t.k, t.dropped, centering_name(t.center));
    appendf(s, "losses per sample at the optimum of |WᵀVᵀX - Y|² + λ|ZᵀVᵀX - X|² (Theorem 1):\n");
    appendf(s, "%12s  %16s  %20s\n", "lambda", "supervised/n", "reconstruction/n");
    const double n = static_cast<double>(std::max<std::uint64_t>(t.n, 1));
    for (const tradeoff_point& p : t.points)
        appendf(s, "%12.6g  %16.8g  %20.8g\n", p.lambda, p.supervised_loss / n, p.reconstruction_loss / n);
    sketch_note(s, r.sketch, "the losses are exact for the encoder returned (Rayleigh–Ritz), hence upper bounds on "
                             "the optimal losses");
    if (r.refinement)
        appendf(s, "preconditioned CG towards Sxx⁻¹ Sxy: %zu of at most %zu verification passes%s; relative residual "
                   "%.3g (exact), λ = 0 loss above its optimum by about %.2g of it (estimate)\n",
                r.refinement->passes, r.refinement->max_passes, r.refinement->stopped ? " (stopped early)" : "",
                r.refinement->residual, r.refinement->estimate);
    return s;
}

std::string render_text(const denoise_result& r) {
    const tracker_report& rep = r.report;
    std::string s;
    appendf(s, "n = %llu samples, D = %zu, C = %zu classes; %s, measure %s\n", (unsigned long long)rep.n, r.dim,
            r.classes, centering_name(r.center), measure_name(r.measure));
    for (const tracker_noise_report& nr : rep.noises) {
        appendf(s, "\nnoise %s%s\n", nr.spec.c_str(), nr.monte_carlo ? " (Monte Carlo)" : " (closed form)");
        appendf(s, "%6s  %12s  %12s  %12s  %14s\n", "k", "clean", "denoising", "relative", "impact (sin²)");
        for (std::size_t k : r.ks)
            appendf(s, "%6zu  %12s  %12s  %12s  %14s\n", k, at(rep.clean.curve, k, "%.6f").c_str(),
                    at(nr.denoising.curve, k, "%.6f").c_str(), at(nr.denoising.relative_difference, k, "%.4g").c_str(),
                    at(nr.impact.distance, k, "%.4g").c_str());
        const std::size_t len = nr.denoising.curve.size();
        if (len < rep.clean.curve.size())
            appendf(s, "(the denoising curve stops at k = %zu: the optimal denoising encoder V* has %zu informative "
                       "directions, beyond which it is arbitrary; '-' marks k past it)\n",
                    len, nr.denoising.subspace.informative);
    }
    sketch_note(s, r.sketch, "every curve and impact is exact for the subspaces returned");
    return s;
}

std::string render_text(const merge_result& r) {
    std::string s;
    if (r.moments)
        appendf(s, "merged %zu moment checkpoints: n = %llu -> %s\n", r.inputs, (unsigned long long)r.n, r.output.c_str());
    else
        appendf(s, "merged %zu checkpoints: n = %llu samples from %zu segments -> %s\n", r.inputs, (unsigned long long)r.n,
                r.segments, r.output.c_str());
    return s;
}

std::string render_text(const info_result& r) {
    std::string s;
    appendf(s, "%s: recalign checkpoint, format version %u, %llu bytes\n", r.file.c_str(), r.version,
            (unsigned long long)r.file_bytes);
    appendf(s, "  kind          %s\n  dimension     %llu\n  aux           %llu\n  config hash   %s\n  payload       %llu bytes\n",
            r.kind.c_str(), (unsigned long long)r.dim, (unsigned long long)r.aux, hex(r.config_hash).c_str(),
            (unsigned long long)r.payload_bytes);
    appendf(s, "  samples       %llu\n", (unsigned long long)r.n);
    if (!r.run) return s;
    appendf(s, "  command       %s\n  method        %s\n  classes       %llu\n  scale         %.17g\n  complete      %s\n",
            r.command.c_str(), r.method.c_str(), (unsigned long long)r.classes, r.scale,
            r.complete ? "yes" : ("no: pending " + r.pending).c_str());
    if (r.method == "nystrom") appendf(s, "  test matrix   %s\n", r.test_matrix.c_str());
    if (r.verified) {
        std::string rows;
        for (std::uint64_t v : r.rows_per_pass) rows += (rows.empty() ? "" : ", ") + std::to_string(v);
        const std::string stop = r.refinement_stopped ? " (an adaptive stop ended them: at most " +
                                                             std::to_string(r.planned_verification_passes) + ")"
                                                       : std::string();
        appendf(s, "  passes        %llu sketch + %s verification%s; rows read per pass: %s\n",
                (unsigned long long)r.passes,
                r.passes_known ? std::to_string(r.verification_passes).c_str() : "(not recorded)", stop.c_str(),
                rows.c_str());
    }
    // After an adaptive stop the segments wait in the last planned pass, which reads nothing: the
    // text names the last pass read (JSON keeps the checkpoint's own pass index).
    const std::uint64_t last_read = r.passes + r.verification_passes;
    for (const info_segment& g : r.segments) {
        appendf(s, "  input         %s rows %llu..%llu (%llu of %llu read in pass %llu, batch %llu, %s)\n", g.images.c_str(),
                (unsigned long long)g.first_row, (unsigned long long)(g.first_row + g.rows_total),
                (unsigned long long)g.rows_done, (unsigned long long)g.rows_total,
                (unsigned long long)(r.refinement_stopped ? std::min(g.pass + 1, last_read) : g.pass + 1),
                (unsigned long long)g.batch, g.format.c_str());
        if (!g.labels.empty()) appendf(s, "  labels        %s\n", g.labels.c_str());
        if (!g.decoding.empty()) appendf(s, "  decoding      %s\n", g.decoding.c_str());
        if (!g.class_names.empty()) {
            std::string names;  // the first few: 1,000 ImageNet ids would not help on a terminal
            for (std::size_t i = 0; i < g.class_names.size() && i < 8; ++i) names += (i ? " " : "") + g.class_names[i];
            if (g.class_names.size() > 8) names += " ...";
            appendf(s, "  classes       %zu named: %s (all in --json)\n", g.class_names.size(), names.c_str());
        }
        if (!g.skipped.empty()) appendf(s, "  skipped       %zu unreadable files (listed in --json)\n", g.skipped.size());
    }
    return s;
}

}  // namespace recalign::cli

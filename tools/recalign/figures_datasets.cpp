// figures --dataset NAME=IMAGES[,labels=FILE][,format=F]: more data sets whose Figure 2 curves
// are drawn over the main one's, as the paper's Figure 2 overlays its data sets. Each is
// prepared (and refused) before any data is read, like the main data, and then streamed in
// its own pass through the same driver, with its own checkpoint (--checkpoint FILE: FILE.NAME,
// so --resume resumes each pass where it stopped).
#include <set>
#include <stdexcept>

#include "figures.hpp"
#include "paths.hpp"
#include "route_state.hpp"

namespace recalign::cli {

namespace {

// NAME becomes a CSV column and a file name (fig2_alignment_NAME.csv): letters, digits, _ and -.
bool plain_name(const std::string& s) {
    if (s.empty() || s.size() > 64) return false;
    for (char ch : s)
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') || ch == '_' || ch == '-'))
            return false;
    return true;
}

dataset_plan prepare_one(const std::string& text, const figures_cli_options& o, const run_needs& needs,
                         std::set<std::string>& names) {
    const auto eq = text.find('=');
    const std::string name = eq == std::string::npos ? "" : text.substr(0, eq);
    if (!plain_name(name))
        throw std::invalid_argument("--dataset " + text + ": expected NAME=IMAGES[,labels=FILE][,format=F] with a NAME "
                                    "of letters, digits, _ and -");
    if (!names.insert(name).second)
        throw std::invalid_argument("--dataset " + text + ": the name '" + name + "' is used twice");
    data_options d = o.data;  // every other DATA option applies to each data set too
    d.layout = o.layout;
    d.images.clear();
    d.labels.clear();
    std::size_t begin = eq + 1;
    while (begin <= text.size()) {
        const std::size_t end = std::min(text.find(',', begin), text.size());
        const std::string part = text.substr(begin, end - begin);
        if (d.images.empty()) {
            if (part.empty()) throw std::invalid_argument("--dataset " + text + ": no IMAGES file after '='");
            d.images.push_back(part);
        } else if (part.rfind("labels=", 0) == 0 && part.size() > 7 && d.labels.empty()) {
            d.labels.push_back(part.substr(7));
        } else if (part.rfind("format=", 0) == 0 && part.size() > 7) {
            d.format = part.substr(7);
        } else {
            throw std::invalid_argument("--dataset " + text + ": '" + part + "' is not labels=FILE or format=F");
        }
        begin = end + 1;
    }
    run_options r = o.run;
    if (!r.checkpoint.empty()) {
        r.checkpoint += "." + name;
        // The driver would say so only when this pass starts, after the main data's pass.
        if (!r.resume && file_exists(r.checkpoint))
            throw user_error("--dataset " + name + ": checkpoint " + r.checkpoint +
                             " exists: pass --resume to continue it, or remove it");
    }
    dataset_plan p;
    p.name = name;
    try {
        p.run = prepare_run(d, r, needs);
    } catch (const std::invalid_argument& e) {
        throw std::invalid_argument("--dataset " + name + ": " + e.what());
    }
    // --resume: a checkpoint of another run is refused now, not after the main data's pass (the
    // driver's full check, files and batching included, still runs when this pass starts).
    if (r.resume && !r.checkpoint.empty() && file_exists(r.checkpoint)) {
        const run_state old = load_run_state(r.checkpoint);
        std::string why = old.config.difference(p.run.config());
        if (why.empty() && (old.segments.size() != 1 || old.segments[0].rows_total != p.run.input.rows))
            why = "its row range differs";
        if (!why.empty())
            throw std::invalid_argument("--dataset " + name + ": --resume: checkpoint " + r.checkpoint +
                                        " belongs to a different run: " + why);
    }
    return p;
}

}  // namespace

std::vector<dataset_plan> prepare_datasets(const figures_cli_options& o, const run_needs& needs,
                                           const std::vector<std::pair<std::string, std::string>>& overlays) {
    std::vector<dataset_plan> plans;
    if (o.datasets.empty()) return plans;
    if (!o.run.from.empty())
        throw std::invalid_argument("--dataset streams its data; --from " + o.run.from + " analyses a saved state "
                                    "(draw another run's curve with --overlay instead)");
    std::set<std::string> names;
    for (const auto& ov : overlays) names.insert(ov.first);
    for (const std::string& text : o.datasets) plans.push_back(prepare_one(text, o, needs, names));
    return plans;
}

std::vector<dataset_curve> stream_datasets(const std::vector<dataset_plan>& plans, alignment_measure measure,
                                           const mpi_context& mpi) {
    std::vector<dataset_curve> curves;
    for (const dataset_plan& p : plans) {
        route_state state(p.run.config());
        dataset_curve c;
        c.name = p.name;
        for (const std::string& f : p.run.input.source.images) c.images += (c.images.empty() ? "" : ", ") + f;
        c.run = stream(state, p.run, mpi);
        const statistics s = finish_choices(finish_statistics(state, p.run.center), p.run);
        c.dim = s.dim;
        alignment_options ao;
        ao.measure = measure;
        c.alignment = alignment_curve(s, ao);
        curves.push_back(std::move(c));
    }
    return curves;
}

}  // namespace recalign::cli

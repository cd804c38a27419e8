#include "validate.hpp"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "jitter_state.hpp"
#include "paths.hpp"
#include "route_state.hpp"
#include "state_io.hpp"
#include "recalign/align/verified_memory.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/core/serial.hpp"
#include "recalign/io/files.hpp"
#include "recalign/io/datasets.hpp"
#include "recalign/io/raw.hpp"
#include "recalign/io/source.hpp"
#include "recalign/io/spill.hpp"

namespace recalign::cli {

namespace {

// The whole of `t` as a number (no trailing characters); false otherwise.
bool whole_double(const std::string& t, double& v) {
    std::size_t used = 0;
    try {
        v = std::stod(t, &used);
    } catch (const std::exception&) {
        return false;
    }
    return !t.empty() && used == t.size();
}

// The whole of `t` as a non-negative integer ("-1" is not one, although stoull wraps it).
bool whole_unsigned(const std::string& t, unsigned long long& v) {
    std::size_t used = 0;
    try {
        v = std::stoull(t, &used);
    } catch (const std::exception&) {
        return false;
    }
    return !t.empty() && t[0] != '-' && used == t.size();
}

std::vector<std::string> split_commas(const std::string& s) {
    std::vector<std::string> parts;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) parts.push_back(part);
    return parts;
}




std::string gib(long double bytes) {
    std::ostringstream os;
    os.precision(bytes < 10.0L * (1ULL << 30) ? 2 : 0);
    os << std::fixed << static_cast<double>(bytes / (1ULL << 30)) << " GiB";
    return os.str();
}

run_config make_config(const run_options& r, std::uint64_t dim, std::uint64_t classes, double scale, centering c,
                       std::size_t default_passes) {
    run_config cfg;
    cfg.method = r.method;
    cfg.dim = dim;
    cfg.classes = classes;
    cfg.scale = scale;
    cfg.float32_kernels = r.precision == "f32-kernels";
    cfg.memory = static_cast<std::uint64_t>(r.memory_gib * static_cast<double>(1ULL << 30));
    cfg.checkpoints = !r.checkpoint.empty();
    if (r.method == "exact") return cfg;  // no sketch option given (check_route_options)
    if (r.rank == 0 || r.rank > dim)
        throw std::invalid_argument("--method " + r.method + " needs --rank K with 1 <= K <= D = " + std::to_string(dim));
    const std::size_t passes = r.passes.value_or(r.method == "nystrom" ? default_passes : 1);
    if (passes < 1 || passes > 100) throw std::invalid_argument("--passes must lie in [1, 100]");
    if (r.tolerance != 0.0) {
        if (!(r.tolerance > 0.0 && r.tolerance < 1.0)) throw std::invalid_argument("--tolerance must lie in (0, 1)");
        if (passes < 2)
            throw std::invalid_argument("--tolerance needs --passes Q >= 2: the most passes to run until the estimate "
                                        "is below it");
    }
    cfg.tolerance = r.tolerance;
    cfg.test_matrix = r.test_matrix;
    cfg.rank = r.rank;
    cfg.passes = passes;
    cfg.default_passes = !r.passes;
    cfg.seed = r.seed;
    cfg.center = static_cast<std::uint8_t>(c);
    return cfg;
}

// Options that only some runs read: given to a run that does not read them, they would be
// silently ignored, so each is refused, before any data is read, by this one table. `given`:
// not at its default; `refused`: why this run does not read it (null: it does).
void check_route_options(const run_options& r, const run_needs& needs) {
    const bool from = !r.from.empty(), sketch = r.method != "exact", nystrom = r.method == "nystrom";
    const std::string not_here = ", not to --method " + r.method;
    const std::string built = "decides what a run accumulates, and --from " + r.from + " analyses a state as it was built";
    const std::string sketches = sketch ? "" : "applies to --method fd or nystrom" + not_here;
    const std::string nystrom_only = nystrom ? "" : "applies to --method nystrom only" + not_here;
    const std::string verification = from ? "needs data to verify on, and --from " + r.from + " reads none"
                                     : !sketch ? "applies to the verification pass of --method fd or nystrom" + not_here
                                     : r.no_verify ? "refines the verification pass, which --no-verify skips"
                                                   : "";
    struct route_option {
        const char* name;
        bool given;
        std::string refused;
    };
    const route_option table[] = {
        {"--method", r.method != "exact", from ? built : ""},
        {"--precision", r.precision != "f64", from ? "decides how a run computes its batches, and --from " + r.from +
                                                         " reads none" : ""},
        {"--rank", r.rank != 0, from ? built : sketches},
        {"--passes", r.passes.has_value(), from ? built : nystrom_only},
        {"--tolerance", r.tolerance != 0.0, from ? built : nystrom_only},
        {"--test-matrix", r.test_matrix != "signs", from ? built : nystrom_only},
        {"--verify", r.verify, verification},
        {"--no-verify", r.no_verify, from ? "" : sketches},
        {"--refine", r.refine.has_value(), verification},
        // --seed keys Nyström's test matrix, --jitter's noise and denoise's Monte-Carlo draws.
        {"--seed", r.seed != 0, nystrom || r.jitter > 0.0 || needs.draws ? ""
                                : from ? built
                                       : "seeds --method nystrom's test matrix, --jitter and Monte-Carlo noises (--monte-carlo, "
                                         "draws=); this " + std::string(needs.command) + " run has none of them"},
    };
    for (const route_option& o : table)
        if (o.given && !o.refused.empty()) throw std::invalid_argument(std::string(o.name) + " " + o.refused);
}

// --from: a run checkpoint, or a library-level moment checkpoint analysed as is.
run_state load_from(const std::string& path, std::shared_ptr<checkpoint_file>& file) {
    require_input_file(path);
    checkpoint::header h;
    {
        std::ifstream is(path, std::ios::binary);
        if (!is) throw file_error(path, "cannot open checkpoint for reading");
        h = checkpoint::read_header(is, path);
    }
    // Any kind but a library moment state is read as a run state (another kind is refused
    // at its header's kind field, byte offset 16).
    if (h.kind != checkpoint::state_kind::moments) {
        file = std::make_shared<checkpoint_file>(path);  // checked; the state is read later, where it lies
        return file->state();
    }
    const moment_accumulator m = checkpoint::load_file<moment_accumulator>(path);
    if (m.has_targets() && m.options().targets != target_mode::class_ids)
        throw std::invalid_argument(path + ": the CLI analyses class-id targets only");
    run_state st;
    st.command = "moments";
    st.config.dim = m.dim();
    st.config.classes = m.has_targets() ? m.classes() : 0;
    st.accumulator = checkpoint::to_bytes(m);
    input_segment whole;  // a library state: complete as far as the CLI can tell
    st.segments.push_back(whole);
    return st;
}

void prepare_from(prepared_run& p, const data_options& d, const run_options& r, const run_needs& needs) {
    if (!needs.from_allowed)
        throw std::invalid_argument(std::string(needs.command) + " draws images from the data: it cannot run --from a "
                                    "checkpoint (use --checkpoint/--resume with the same DATA instead)");
    // Every DATA option decides how data is read: none applies to a state already accumulated
    // (each named when given, rather than silently ignored). A command's own --layout (figures,
    // denoise: the masks' image layout) is not a DATA option.
    const data_options unset;
    const std::pair<const char*, bool> data_given[] = {
        {"--images", !d.images.empty()}, {"--labels", !d.labels.empty()}, {"--scale", !d.scale.empty()},
        {"--skip", d.skip != 0}, {"--limit", d.limit != 0}, {"--root", !d.root.empty()},
        {"--classes-from", !d.classes_from.empty()}, {"--classes", d.classes != unset.classes},
        {"--batch", d.batch != unset.batch}, {"--format", d.format != unset.format},
        {"--raw-shape", !d.raw_shape.empty()}, {"--raw-dtype", d.raw_dtype != unset.raw_dtype},
        {"--channels", d.channels != unset.channels}, {"--resize", d.resize != unset.resize},
        {"--crop", !d.crop.empty()}, {"--label-kind", d.label_kind != unset.label_kind},
        {"--threads", d.threads != unset.threads}, {"--skip-unreadable", d.skip_unreadable},
        {"--layout", !needs.own_layout && d.layout != unset.layout}};
    for (const auto& [name, given] : data_given)
        if (given)
            throw std::invalid_argument("--from " + r.from + " analyses the state in the checkpoint: DATA options "
                                        "(such as " + name + ", given) decide how data is read and do not apply");
    p.from = load_from(r.from, p.from_file);
    // Refused as the state's own load would refuse it, before the route check below would say
    // what a sketch alone lacks (denoise, tradeoff): a verified run is resumed, not analysed.
    if (p.from_file) route_state::refuse_verified(without_jitter_header(p.from_file->accumulator()));
    p.from_path = r.from;
    p.from->config.memory = static_cast<std::uint64_t>(r.memory_gib * static_cast<double>(1ULL << 30));
    if (needs.labels && p.from->config.classes == 0)
        throw std::invalid_argument(std::string(needs.command) + " needs labels: the checkpoint " + r.from +
                                    " was made without them");
    check_route(parse_route(p.from->config.method), needs.analysis, p.from->config.classes != 0);
    // The state is loaded and analysed as a data run's is at its end: the same --memory check.
    require_memory(p.from->config, 0, "--from " + r.from, needs.exact_matrices);
}

// Rows of the range [skip, skip + limit), from the headers. A --limit beyond the end of the
// file is refused by the source (it names the rows there are): a range is read whole or not
// at all, so that runs over parts of one file can be merged without a silent gap.
std::uint64_t range_rows(const io::data_source& src) {
    if (src.total() == 0)
        throw std::invalid_argument(src.options().describe() + ": no rows to read (the file has " +
                                    std::to_string(src.file_rows()) + ", --skip " + std::to_string(src.options().skip) +
                                    ")");
    return src.total();
}

// The image options apply to the formats that make rows from images; elsewhere they would
// be silently ignored, so they are refused.
// `own_layout`: the command's --layout orders raw rows as well (project, denoise, figures).
void check_image_options(const data_options& d, io::data_format f, bool own_layout) {
    const bool images = io::is_image_format(f), cifar = io::is_cifar_format(f);
    auto refuse = [&](const char* option, const char* formats) {
        throw std::invalid_argument(std::string(option) + " applies to --format " + formats + ", not to the " +
                                    io::format_name(f) + " input " + (d.images.empty() ? "" : d.images.front()));
    };
    if (!images && !cifar) {
        if (d.channels != 3) refuse("--channels", "folder, list, cifar10 or cifar100");
        if (d.resize) refuse("--resize", "folder, list, cifar10 or cifar100");
        if (!d.crop.empty()) refuse("--crop", "folder, list, cifar10 or cifar100");
        if (!own_layout && d.layout != "hwc") refuse("--layout", "folder, list, cifar10 or cifar100");
    }
    if (!images) {
        if (d.skip_unreadable) refuse("--skip-unreadable", "folder or list");
        if (d.threads) refuse("--threads", "folder or list");
    }
    if (!d.label_kind.empty() && f != io::data_format::cifar100) refuse("--label-kind", "cifar100");
}

}  // namespace

io::source_options resolve_data(const data_options& d, bool want_labels) {
    io::source_options o;
    bool default_data = false;
    if (d.images.empty()) {
        if (!d.labels.empty()) throw std::invalid_argument("--labels needs --images");
        if (!d.raw_shape.empty() || d.format != "auto" || !d.root.empty() || !d.classes_from.empty())
            throw std::invalid_argument("--format/--raw-shape/--root/--classes-from need --images");
        const io::fashion_mnist_files f = io::fashion_mnist();
        o.images = {f.train_images};
        if (want_labels) o.labels = {f.train_labels};
        default_data = true;
    } else {
        o.images = d.images;
        o.labels = d.labels;
    }
    o.format = io::parse_format(d.format);
    if (!d.raw_shape.empty()) {
        const std::vector<std::string> nd = split_commas(d.raw_shape);
        unsigned long long n = 0, dd = 0;
        if (nd.size() != 2 || d.raw_shape.back() == ',' || !whole_unsigned(nd[0], n) || !whole_unsigned(nd[1], dd))
            throw std::invalid_argument("--raw-shape: expected two non-negative integers 'N,D', got '" + d.raw_shape + "'");
        if (dd == 0) throw std::invalid_argument("--raw-shape: D must be at least 1");
        o.raw_rows = n;
        o.raw_cols = dd;
        if (o.format == io::data_format::auto_detect) o.format = io::data_format::raw;
    } else if (o.format == io::data_format::raw) {
        throw std::invalid_argument("--format raw needs --raw-shape N,D");
    }
    o.raw_type = io::parse_raw_dtype(d.raw_dtype);
    o.root = d.root;
    o.classes_from = d.classes_from;
    if (!d.root.empty() && o.format != io::data_format::auto_detect && o.format != io::data_format::list)
        throw std::invalid_argument("--root applies to --format list");
    o.geometry.channels = d.channels;
    o.geometry.resize = d.resize;
    if (!d.crop.empty()) {
        std::vector<std::string> hw = split_commas(d.crop);
        if (hw.size() == 1 && d.crop.find(',') == std::string::npos) hw.push_back(hw[0]);  // S: S,S (CenterCrop(S))
        unsigned long long h = 0, w = 0;
        if (hw.size() != 2 || d.crop.back() == ',' || !whole_unsigned(hw[0], h) || !whole_unsigned(hw[1], w) || !h || !w ||
            h > (1u << 16) || w > (1u << 16))
            throw std::invalid_argument("--crop: expected H,W (or S for S,S) of positive integers up to 65536, got '" + d.crop + "'");
        o.geometry.crop_h = h;
        o.geometry.crop_w = w;
    }
    o.geometry.layout = d.layout == "chw" ? image_layout::chw : image_layout::hwc;
    o.geometry.validate();
    if (d.label_kind == "coarse") o.label_kind = io::cifar_label::coarse;
    o.threads = d.threads;
    o.skip_unreadable = d.skip_unreadable;
    o.scale = d.scale.empty() ? (default_data ? 1.0 / 255.0 : 1.0) : parse_scale(d.scale);
    o.batch = d.batch;
    o.skip = d.skip;
    o.limit = d.limit;
    return o;
}

namespace {
// Bytes a run of `c` holds at its largest, plus `extra` (recalign/align/verified_memory.hpp; a
// block Krylov Nyström sketch, --passes > 1, at its widest basis: nystrom_route_options's sketch).
long double memory_need(const run_config& c, std::uint64_t extra, unsigned exact_matrices = 3) {
    // A checkpoint's write and load stream the state (state_io.hpp): only their buffers add to it.
    const long double checkpoints = c.checkpoints ? static_cast<long double>(checkpoint_buffer_bytes) : 0.0L;
    return run_memory(c.method, c.dim, c.classes, c.rank, static_cast<long double>(extra) + checkpoints,
                      nystrom_route_options(c).blocks, exact_matrices);
}

long double memory_budget(const run_config& c) {
    return c.memory ? static_cast<long double>(c.memory) : physical_memory();
}
}  // namespace

void require_memory(const run_config& c, std::uint64_t extra, const std::string& what, unsigned exact_matrices) {
    const long double need = memory_need(c, extra, exact_matrices), phys = memory_budget(c);
    if (phys <= 0 || need <= phys) return;
    const long double d = static_cast<long double>(c.dim), k = static_cast<long double>(c.classes);
    std::string way_out = c.method == "exact"     ? ": use --method fd or --method nystrom with --rank K"
                          : c.method == "nystrom" ? ": use a smaller --rank or fewer --passes (block Krylov keeps every pass's block)"
                                                  : ": use a smaller --rank";
    if (c.classes && k * k + 2.0L * (d + 1.0L) * k > d * d)
        way_out = " (C = " + std::to_string(c.classes) + " classes; is --classes or a label wrong?)";
    if (c.checkpoints && need - static_cast<long double>(checkpoint_buffer_bytes) <= phys)
        way_out = ", of which " + std::to_string(checkpoint_buffer_bytes >> 20) +
                  " MiB are the buffers of --checkpoint's writes and --resume's load: raise --memory or run without "
                  "--checkpoint";
    throw user_error(what + ": --method " + c.method + " needs about " + gib(need) + " for D = " +
                     std::to_string(c.dim) + (c.classes ? " and C = " + std::to_string(c.classes) : std::string()) +
                     (c.memory ? " (--memory is " : " (this machine has ") + gib(phys) + ")" + way_out);
}

eigen_options solver_memory(const run_config& c, std::uint64_t extra) {
    const long double spare = memory_budget(c) - memory_need(c, extra);
    eigen_options o;
    o.workspace_bytes = spare <= 0 ? 0 : spare >= 1.8e19L ? o.workspace_bytes : static_cast<std::uint64_t>(spare);
    return o;
}

void require_spill_space(const std::string& dir, std::uint64_t bytes, const std::string& what) {
    if (bytes == 0) return;
    // One check with the sketch route's (io::spill_shortfall: a spill file of no size made there,
    // then statvfs); tests give the free figure through RECALIGN_TEST_SPILL_FREE.
    const char* t = std::getenv("RECALIGN_TEST_SPILL_FREE");
    const bool injected = t && *t;
    std::string why = io::spill_shortfall(dir, injected ? 0 : bytes);
    if (why.empty() && injected && std::strtoull(t, nullptr, 10) < bytes)
        why = dir + " has " + std::string(t) + " bytes free, " + std::to_string(bytes) + " needed";
    if (!why.empty())
        throw user_error(what + " wait on disk: up to " + std::to_string(bytes) + " bytes in unlinked files in " + dir +
                         " ($TMPDIR): " + why + ": set TMPDIR to a directory with room");
}

namespace {
void require_one_pass(const io::source_options& o, const run_options& r) {
    // A pipe is read once, front to back: what would read it again is refused here.
    if (o.images.size() != 1)
        throw std::invalid_argument("--images: a pipe is read alone (it cannot be one of several --images)");
    const std::string what = "--images " + o.images.front() + " is a pipe, read once";
    if (o.format != io::data_format::raw || o.raw_rows == 0)
        throw std::invalid_argument(what + ": give its format and length as --raw-shape N,D (raw rows)");
    if (r.resume)
        throw std::invalid_argument(what + ": --resume would have to skip the rows already done in a new stream; "
                                    "write the stream to a file to resume, or restart the run (its --checkpoint "
                                    "files can still be analysed with --from or merged)");
    if (r.passes.value_or(1) > 1)
        throw std::invalid_argument(what + ": --passes " + std::to_string(*r.passes) + " needs a file");
    // The verification pass of the sketch routes: refused in check_verification (sketch_route.cpp).
}
}  // namespace

prepared_run prepare_run(const data_options& d, const run_options& r, const run_needs& needs) {
    prepared_run p;
    p.raw_targets = pick_raw_targets(r, needs.default_raw_targets);
    p.center = p.raw_targets ? centering::centered : pick_centering(r, needs.default_centered);
    p.standardize = r.standardize == "global";
    p.jitter = r.jitter;
    p.jitter_seed = r.seed;
    if (!(r.jitter >= 0.0 && r.jitter < 1e300)) throw std::invalid_argument("--jitter must be a finite number >= 0");
    if (r.jitter > 0.0 && !r.from.empty())
        throw std::invalid_argument("--jitter applies to data as it is read; --from " + r.from +
                                    " analyses a state as it was accumulated");
    p.drive.command = needs.command;
    p.drive.checkpoint = r.checkpoint;
    p.drive.checkpoint_every = r.checkpoint_every;
    p.drive.resume = r.resume;
    p.drive.quiet = r.quiet;
    p.drive.hooks.batch_delay_ms = r.test_batch_delay_ms;
    check_route_options(r, needs);
    // A checkpoint that could never be written is refused before any input is opened (the
    // driver checks again when it opens the checkpoint).
    if (!r.checkpoint.empty()) require_state_file("--checkpoint", r.checkpoint);
    if (!r.from.empty()) {
        prepare_from(p, d, r, needs);
        return p;
    }
    // What the route cannot serve is known from the options alone (statistics.hpp). A sketch
    // route serves tradeoff and denoise through its verification pass: --no-verify is the option
    // to drop, the way out the library's message cannot know.
    try {
        check_route(parse_route(r.method), needs.analysis, needs.labels || !d.labels.empty());
    } catch (const std::invalid_argument& e) {
        if (!r.no_verify) throw;
        // The library's message is about a sketch alone, which is what --no-verify leaves.
        throw std::invalid_argument("--no-verify: " + std::string(needs.command) + " on --method " + r.method +
                                    " needs its verification pass (drop --no-verify); without it: " + e.what());
    }
    io::source_options o = resolve_data(d, needs.labels);
    bool piped = false;
    for (const std::string& f : o.images) {
        if (is_pipe(f)) piped = true;
        else if (!is_directory(f)) require_input_file(f);
    }
    if (piped) require_one_pass(o, r);
    for (const std::string& f : o.labels) require_input_file(f);
    // Headers only (and, for image files without --crop, the first image): D, the row
    // range, the labels' row count.
    const io::data_source src(o);
    check_image_options(d, src.format(), needs.own_layout);
    p.input.rows = range_rows(src);
    std::uint64_t classes = 0;
    if (src.has_labels()) classes = d.classes ? d.classes : src.scan_classes();
    p.input.config = make_config(r, src.dim(), classes, o.scale, p.center, needs.default_passes);
    const std::string command = needs.command;
    p.input.config.krylov = command == "align" || command == "spectrum" || command == "project";
    p.input.source = o;
    // The batches as delivered (u8 at 224x224x3 and the default 1,000 rows: 150 MB; float64
    // 1.2 GB), twice with a pipe's read ahead or an image decoder, with the decoders' images
    // (io::data_source::batch_bytes). Sketches convert in column blocks (Nyström) or a few rows
    // at a time (FD). The exact route also widens the batch to doubles with its targets
    // (measured at D = 784, float64 rows, --batch 3000: 2.1 batches of D doubles beside the
    // moments at the peak; u8 and float32 input widen 256 rows at a time, into a P x P float
    // scatter that exact_matrices covers).
    p.input.batch_bytes = src.batch_bytes();
    const std::uint64_t batch_bytes =
        p.input.config.method == "exact"
            ? checked_add(checked_mul(checked_mul(std::min<std::uint64_t>(o.batch, p.input.rows),
                                                  checked_add(src.dim(), classes, "D + C"), "--batch x D"),
                                      8, "--batch x D bytes"),
                          p.input.batch_bytes, "batch bytes")
            : p.input.batch_bytes;
    require_memory(p.input.config, batch_bytes, o.describe(), needs.exact_matrices);
    if (needs.labels && !src.has_labels())
        throw std::invalid_argument(std::string(needs.command) + " needs labels: pass --labels FILE with --images");
    return p;
}

double parse_scale(const std::string& s) {
    auto num = [&](const std::string& t) {
        double v = 0;
        if (!whole_double(t, v)) throw std::invalid_argument("--scale: '" + s + "' is not a number or fraction");
        return v;
    };
    const auto slash = s.find('/');
    if (slash == std::string::npos) return num(s);
    return num(s.substr(0, slash)) / num(s.substr(slash + 1));
}

std::vector<double> parse_list(const std::string& s, const char* what) {
    std::vector<double> out;
    for (const std::string& part : split_commas(s)) {
        double v = 0;
        if (!whole_double(part, v))
            throw std::invalid_argument(std::string(what) + ": '" + part + "' is not a number (in '" + s + "')");
        out.push_back(v);
    }
    if (out.empty()) throw std::invalid_argument(std::string(what) + ": empty list");
    return out;
}

std::vector<std::size_t> parse_k_list(const std::string& s, const char* what, std::size_t max_k, const char* bound) {
    std::vector<std::size_t> out;
    for (const std::string& part : split_commas(s)) {
        unsigned long long v = 0;
        if (!whole_unsigned(part, v) || v < 1 || v > max_k)
            throw std::invalid_argument(std::string(what) + ": '" + part + "' is not an integer in [1, " +
                                        std::to_string(max_k) + "] (" + bound + " = " + std::to_string(max_k) + ")");
        out.push_back(static_cast<std::size_t>(v));
    }
    if (out.empty()) throw std::invalid_argument(std::string(what) + ": empty list");
    if (const std::size_t* k = first_repeat(out))
        throw std::invalid_argument(std::string(what) + ": '" + std::to_string(*k) + "' is listed twice");
    return out;
}

std::vector<std::size_t> parse_shape(const std::string& s) {
    std::vector<std::size_t> out;
    for (const std::string& part : split_commas(s)) {
        unsigned long long v = 0;
        if (!whole_unsigned(part, v) || v == 0)
            throw std::invalid_argument("--image-shape: expected H,W,C of positive integers, got '" + s + "'");
        out.push_back(static_cast<std::size_t>(v));
    }
    if (out.size() == 2) out.push_back(1);
    if (out.size() != 3) throw std::invalid_argument("--image-shape: expected H,W,C (or H,W), got '" + s + "'");
    // Refused here, not compared after wrapping: H·W·C ≡ D (mod 2^64) would pass the check
    // against the rows' width and then index far outside every image.
    checked_product(out.begin(), out.end(), "--image-shape H x W x C");
    return out;
}

bool pick_raw_targets(const run_options& r, bool by_default) {
    return r.center == "inputs" || (by_default && r.center.empty() && !r.no_center);
}

statistics finish_choices(statistics s, const prepared_run& p) {
    if (p.raw_targets) s = with_raw_targets(std::move(s));  // one-hot class ids: their counts give raw Syy
    if (p.standardize) s = standardize_global(std::move(s));
    return s;
}

centering pick_centering(const run_options& r, bool default_centered) {
    if (r.center == "both" || r.center == "inputs") return centering::centered;
    if (r.center == "none" || r.no_center) return centering::uncentered;
    return default_centered ? centering::centered : centering::uncentered;
}

}  // namespace recalign::cli

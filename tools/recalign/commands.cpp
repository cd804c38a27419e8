#include "commands.hpp"

#include <unistd.h>

#include <nlohmann/json.hpp>

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <system_error>
#include <thread>

#include "dist_hook.hpp"
#include "engine.hpp"
#include "output.hpp"
#include "recalign/align/alignment.hpp"
#include "recalign/align/denoising.hpp"
#include "recalign/align/noise.hpp"
#include "recalign/align/tracker.hpp"
#include "recalign/align/tradeoff.hpp"
#include "recalign/core/checked.hpp"
#include "recalign/core/errors.hpp"
#include "recalign/io/datasets.hpp"
#include "recalign/io/files.hpp"
#include "recalign/io/raw.hpp"
#include "recalign/io/source.hpp"
#include "recalign/spectral/eigen.hpp"
#include "recalign/spectral/subspace.hpp"
#include "run_state.hpp"

namespace recalign::cli {

using json = nlohmann::ordered_json;

namespace {

volatile std::sig_atomic_t g_interrupted = 0;
extern "C" void on_signal(int) { g_interrupted = 1; }

// Thrown after an interrupted run saved its checkpoint: exit status 130.
struct interrupted {};

// ---- option registration -----------------------------------------------------------

void add_data_options(CLI::App* s, data_args& d) {
    const char* g = "DATA (default: the Fashion-MNIST training set)";
    s->add_option("--images", d.images, "Images (samples) file: IDX (.gz or plain), .npy or raw")->group(g);
    s->add_option("--labels", d.labels, "Integer class labels, one per row: IDX or .npy")->group(g);
    s->add_option("--classes", d.classes, "Number of classes C (default: largest label + 1, from one pass over the labels)")
        ->group(g);
    s->add_option("--format", d.format, "Images format")->check(CLI::IsMember({"auto", "idx", "npy", "raw"}))
        ->capture_default_str()->group(g);
    s->add_option("--raw-shape", d.raw_shape, "Raw files: N,D (N = 0: as many rows as the file holds)")->group(g);
    s->add_option("--raw-dtype", d.raw_dtype, "Raw files: element type")->check(CLI::IsMember({"u8", "f4", "f8"}))
        ->capture_default_str()->group(g);
    s->add_option("--scale", d.scale,
                  "Multiply every value by S (a number or a fraction such as 1/255); default 1/255 for the "
                  "default data set, 1 otherwise")->group(g);
    s->add_option("--batch", d.batch, "Rows per minibatch")->capture_default_str()->check(CLI::Range(1, 1 << 30))->group(g);
    s->add_option("--skip", d.skip, "Start at this row of the file")->capture_default_str()->group(g);
    s->add_option("--limit", d.limit, "Read at most this many rows (0 = to the end)")->capture_default_str()->group(g);
}

void add_method_options(CLI::App* s, run_args& r) {
    s->add_option("--method", r.method, "Route to the spectrum: exact moments, Frequent Directions or Nyström sketch")
        ->check(CLI::IsMember({"exact", "fd", "nystrom"}))->capture_default_str();
    s->add_option("--rank", r.rank, "Sketch rank K (fd, nystrom)");
    s->add_option("--passes", r.passes, "Passes over the data (nystrom power iterations)")->capture_default_str();
    s->add_option("--seed", r.seed, "Seed of the randomized sketches")->capture_default_str();
    s->add_option("--precision", r.precision,
                  "Per-batch arithmetic for float32 input (.npy <f4, IDX f32, raw f4): f64 converts it to double; "
                  "f32-kernels computes each batch's scatter (exact route, SSYRK) and products (nystrom, SGEMM) in "
                  "single precision and accumulates across batches in double: about 1.3-2x faster, relative error "
                  "about 7e-8 in the second moment and 1e-10 to 3e-9 in the eigenvalues on Fashion-MNIST "
                  "(BENCHMARKS.md). Other input types and --method fd always use double. Not part of the run's "
                  "configuration: such states merge with f64 ones, and --resume keeps the checkpoint's precision")
        ->check(CLI::IsMember({"f64", "f32-kernels"}))->capture_default_str();
}

void add_run_options(CLI::App* s, run_args& r, bool default_centered) {
    auto* c = s->add_flag("--center", r.center,
                          std::string("Analyse the centered covariance") + (default_centered ? " (default)" : ""));
    auto* nc = s->add_flag("--no-center", r.no_center,
                           std::string("Analyse the uncentered second moment XXᵀ") + (default_centered ? "" : " (default)"));
    c->excludes(nc);
    add_method_options(s, r);
    auto* ck = s->add_option("--checkpoint", r.checkpoint, "Write the whole state to FILE (atomically) at the end, "
                                                           "every --checkpoint-every samples and on SIGINT/SIGTERM");
    s->add_option("--checkpoint-every", r.checkpoint_every, "Samples between checkpoints (0 = only at the end)")
        ->needs(ck);
    s->add_flag("--resume", r.resume, "Continue from --checkpoint FILE if it exists (refuses a different input "
                                      "or configuration)")->needs(ck);
    auto* from = s->add_option("--from", r.from, "Analyse the state in a checkpoint (e.g. the output of merge) "
                                                 "instead of reading data");
    from->excludes(ck);
    s->add_flag("--quiet,-q", r.quiet, "No progress line or notes on stderr");
    s->add_flag("--json", r.json, "Print one JSON document on stdout");
}

// ---- data and accumulation -----------------------------------------------------------

double parse_scale(const std::string& s) {
    auto num = [&](const std::string& t) {
        std::size_t used = 0;
        double v = 0;
        try {
            v = std::stod(t, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != t.size() || t.empty()) throw std::invalid_argument("--scale: '" + s + "' is not a number or fraction");
        return v;
    };
    const auto slash = s.find('/');
    if (slash == std::string::npos) return num(s);
    return num(s.substr(0, slash)) / num(s.substr(slash + 1));
}

std::pair<std::uint64_t, std::uint64_t> parse_pair(const std::string& s, const char* what) {
    const auto comma = s.find(',');
    try {
        if (comma != std::string::npos) {
            std::size_t a = 0, b = 0;
            const std::string l = s.substr(0, comma), r = s.substr(comma + 1);
            const unsigned long long x = std::stoull(l, &a), y = std::stoull(r, &b);
            if (a == l.size() && b == r.size() && l[0] != '-' && r[0] != '-') return {x, y};
        }
    } catch (const std::exception&) {
    }
    throw std::invalid_argument(std::string(what) + ": expected two non-negative integers 'N,D', got '" + s + "'");
}

struct resolved_data {
    io::source_options options;
    bool default_data = false;
};

resolved_data resolve_data(const data_args& d, bool want_labels) {
    resolved_data r;
    io::source_options& o = r.options;
    if (d.images.empty()) {
        if (!d.labels.empty()) throw std::invalid_argument("--labels needs --images");
        if (!d.raw_shape.empty() || d.format != "auto") throw std::invalid_argument("--format/--raw-shape need --images");
        const io::fashion_mnist_files f = io::fashion_mnist();
        o.images = f.train_images;
        if (want_labels) o.labels = f.train_labels;
        r.default_data = true;
    } else {
        o.images = d.images;
        o.labels = d.labels;
    }
    o.format = io::parse_format(d.format);
    if (!d.raw_shape.empty()) {
        const auto [n, dd] = parse_pair(d.raw_shape, "--raw-shape");
        if (dd == 0) throw std::invalid_argument("--raw-shape: D must be at least 1");
        o.raw_rows = n;
        o.raw_cols = dd;
        if (o.format == io::data_format::auto_detect) o.format = io::data_format::raw;
    } else if (o.format == io::data_format::raw) {
        throw std::invalid_argument("--format raw needs --raw-shape N,D");
    }
    o.raw_type = io::parse_raw_dtype(d.raw_dtype);
    o.scale = d.scale.empty() ? (r.default_data ? 1.0 / 255.0 : 1.0) : parse_scale(d.scale);
    o.batch = d.batch;
    o.skip = d.skip;
    o.limit = d.limit;
    return r;
}

run_config make_config(const run_args& r, const std::string& images, std::uint64_t dim, std::uint64_t classes,
                       double scale, centering c) {
    run_config cfg;
    cfg.method = r.method;
    cfg.dim = dim;
    cfg.classes = classes;
    cfg.scale = scale;
    cfg.float32_kernels = r.precision == "f32-kernels";
    if (r.method != "exact") {
        cfg.rank = r.rank;
        cfg.passes = r.passes;
        cfg.seed = r.seed;
        cfg.center = static_cast<std::uint8_t>(c);
    }
    if (r.method == "exact" && (r.rank != 0 || r.passes != 1))
        throw std::invalid_argument("--rank and --passes apply to --method fd or nystrom");
    if (r.method == "exact") {
        // The exact route holds D x D moments and, for the analysis, about two more D x D
        // matrices: refuse up front, with the way out, when that cannot fit in this machine.
        const long double need = 3.0L * 8.0L * static_cast<long double>(dim) * static_cast<long double>(dim);  // no wrap
        const long double phys = static_cast<long double>(::sysconf(_SC_PHYS_PAGES)) *
                                 static_cast<long double>(::sysconf(_SC_PAGE_SIZE));
        if (phys > 0 && need > phys)
            throw std::invalid_argument(images + ": --method exact needs about " +
                                        std::to_string(static_cast<unsigned long long>(need / (1ULL << 30))) +
                                        " GiB for its rows of D = " + std::to_string(dim) + " values (this machine has " +
                                        std::to_string(static_cast<unsigned long long>(phys / (1ULL << 30))) +
                                        " GiB): use --method fd or --method nystrom with --rank K");
    }
    if (!method_available(r.method))
        throw std::invalid_argument("--method " + r.method + " is not available in this build yet (use --method exact)");
    return cfg;
}

struct run_result {
    run_state state;  // configuration and segments (accumulator bytes not kept)
    engine eng;
};

bool file_exists(const std::string& p) { return ::access(p.c_str(), F_OK) == 0; }

void save_checkpoint(const std::string& path, run_state& st, const engine& eng) {
    st.n = eng.n();
    st.accumulator = eng.save();
    const std::string bytes = checkpoint::to_bytes(st);
    st.accumulator.clear();
    try {
        checkpoint::write_file_atomic(path, bytes);
    } catch (const std::system_error& e) {
        throw user_error(std::string("cannot write the checkpoint: ") + e.what());
    }
}

std::string row_range(const input_segment& s) {
    return "rows " + std::to_string(s.first_row) + ".." + std::to_string(s.first_row + s.rows_total);
}

// Checks that a checkpoint belongs to this run: one segment, same configuration, files and range.
void check_resumable(const std::string& path, const run_state& st, const run_config& cfg, const input_segment& now) {
    auto refuse = [&](const std::string& why) {
        throw std::invalid_argument("--resume: checkpoint " + path + " belongs to a different run: " + why);
    };
    if (st.segments.size() != 1)
        refuse("it is a merge of " + std::to_string(st.segments.size()) + " runs (analyse it with --from)");
    if (const std::string d = st.config.difference(cfg); !d.empty()) refuse(d);
    const input_segment& s = st.segments[0];
    if (const std::string d = s.images.difference(now.images); !d.empty()) refuse("images: " + d);
    if (const std::string d = s.labels.difference(now.labels); !d.empty()) refuse("labels: " + d);
    if (s.format != now.format) refuse("the images format was " + s.format + ", now " + now.format);
    if (s.first_row != now.first_row || s.rows_total != now.rows_total)
        refuse("it covers " + row_range(s) + " (--skip/--limit), this run " + row_range(now));
    if (s.batch != now.batch)
        refuse("--batch was " + std::to_string(s.batch) + ", now " + std::to_string(now.batch) +
               " (the batch boundaries must stay the same)");
}

run_result accumulate(const std::string& command, const data_args& d, const run_args& r_all, bool want_labels,
                      centering c) {
    const run_args r = dist_hook::per_rank(r_all);  // under mpirun: FILE.rank<r> checkpoints
    if (!r.from.empty()) {
        if (!d.images.empty() || !d.labels.empty() || d.skip || d.limit || !d.scale.empty())
            throw std::invalid_argument("--from " + r.from + " analyses the state in the checkpoint: DATA options "
                                        "(--images, --labels, --scale, --skip, --limit) do not apply");
        checkpoint::header h;
        {
            std::ifstream is(r.from, std::ios::binary);
            if (!is) throw file_error(r.from, 0, "cannot open checkpoint for reading");
            h = checkpoint::read_header(is, r.from);
        }
        if (h.kind == checkpoint::state_kind::moments) {
            // A library-level moment checkpoint (e.g. saved from C++ or Python): analyse it as is.
            std::ifstream is(r.from, std::ios::binary);
            const std::string bytes((std::istreambuf_iterator<char>(is)), std::istreambuf_iterator<char>());
            const moment_accumulator m = checkpoint::load_file<moment_accumulator>(r.from);
            run_state st;
            st.command = "moments";
            st.config.dim = m.dim();
            st.config.classes = m.has_targets() ? m.classes() : 0;
            if (m.has_targets() && m.options().targets != target_mode::class_ids)
                throw std::invalid_argument(r.from + ": the CLI analyses class-id targets only");
            engine eng(st.config);
            eng.load(bytes, r.from);
            return {std::move(st), std::move(eng)};
        }
        run_state st = load_run_state(r.from);
        engine eng(st.config);
        eng.load(st.accumulator, r.from);
        st.accumulator.clear();
        if (!st.complete() && !r.quiet)
            std::fprintf(stderr, "recalign: note: %s is a partial run (%llu samples)\n", r.from.c_str(),
                         (unsigned long long)eng.n());
        return {std::move(st), std::move(eng)};
    }
    const resolved_data rd = dist_hook::shard(resolve_data(d, want_labels));  // under mpirun: this rank's batches
    io::data_source src(rd.options);
    if (src.total() == 0)
        throw std::invalid_argument(rd.options.images + ": no rows to read (the file has " +
                                    std::to_string(src.file_rows()) + ", --skip " + std::to_string(rd.options.skip) + ")");
    std::uint64_t classes = 0;
    if (src.has_labels()) classes = d.classes ? d.classes : src.scan_classes();
    run_config cfg = make_config(r, rd.options.images, src.dim(), classes, rd.options.scale, c);

    run_state st;
    st.command = command;
    st.config = cfg;
    input_segment seg;
    seg.images = src.images_fingerprint();
    seg.labels = src.labels_fingerprint();
    seg.format = io::format_name(src.format());
    seg.first_row = rd.options.skip;
    seg.rows_total = src.total();
    seg.batch = rd.options.batch;
    engine eng(cfg);
    dist_hook::check_agreement(command, cfg, seg);

    const bool ckpt = !r.checkpoint.empty();
    if (ckpt) {
        // Fail now, not after hours of reading, if the checkpoint can never be written.
        const auto slash = r.checkpoint.find_last_of('/');
        const std::string dir = slash == std::string::npos ? "." : (slash == 0 ? "/" : r.checkpoint.substr(0, slash));
        if (::access(dir.c_str(), W_OK | X_OK) != 0)
            throw user_error("--checkpoint " + r.checkpoint + ": directory " + dir + " is not writable or does not exist");
    }
    if (ckpt && file_exists(r.checkpoint)) {
        if (!r.resume)
            throw user_error("checkpoint " + r.checkpoint + " exists: pass --resume to continue it, or remove it");
        run_state old = load_run_state(r.checkpoint);
        check_resumable(r.checkpoint, old, cfg, seg);
        eng.load(old.accumulator, r.checkpoint);
        seg.rows_done = old.segments[0].rows_done;
        seg.pass = old.segments[0].pass;
        src.seek(seg.rows_done);
        if (!r.quiet)
            std::fprintf(stderr, "recalign: resuming %s at row %llu of %llu\n", r.checkpoint.c_str(),
                         (unsigned long long)seg.rows_done, (unsigned long long)seg.rows_total);
    }
    st.segments.push_back(seg);
    if (ckpt) {
        // A write killed mid-way leaves its temporary file (a prefix of a checkpoint, never
        // read): without this, every such kill of a days-long run would leave one forever.
        const std::size_t stale = checkpoint::remove_stale_temporaries(r.checkpoint);
        if (stale && !r.quiet)
            std::fprintf(stderr, "recalign: removed %zu temporary file(s) of an interrupted checkpoint write beside %s\n",
                         stale, r.checkpoint.c_str());
    }

    if (ckpt) {
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
    }
    long delay_ms = 0;  // test hook: slows a run down so that a test can kill it mid-way
    if (const char* e = std::getenv("RECALIGN_TEST_BATCH_DELAY_MS")) delay_ms = std::atol(e);

    const std::uint64_t passes = cfg.passes;
    progress bar(!r.quiet && ::isatty(2), src.total() * passes, st.segments[0].pass * src.total() + src.position());
    io::source_batch b;
    std::uint64_t last_ckpt = src.position();
    for (;;) {
    while (src.next(b)) {
        try {
            eng.update(b, st.segments[0].pass);
        } catch (const std::invalid_argument& e) {
            bar.finish();
            throw input_error(rd.options.images + (src.has_labels() ? " / " + rd.options.labels : std::string()) +
                              ": " + e.what());
        }
        st.segments[0].rows_done = src.position();
        bar.update(st.segments[0].pass * src.total() + src.position());
        if (delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms));
        if (ckpt && r.checkpoint_every && src.position() - last_ckpt >= r.checkpoint_every) {
            save_checkpoint(r.checkpoint, st, eng);
            last_ckpt = src.position();
        }
        if (g_interrupted) {
            bar.finish();
            if (ckpt) {
                save_checkpoint(r.checkpoint, st, eng);
                std::fprintf(stderr, "recalign: interrupted at row %llu; checkpoint %s written, continue with --resume\n",
                             (unsigned long long)(st.segments[0].first_row + src.position()), r.checkpoint.c_str());
            }
            throw interrupted{};
        }
    }
    // Multi-pass sketches (Nyström power iterations): each pass is one more read of the range.
    if (st.segments[0].pass + 1 >= passes) break;
    eng.next_pass();
    st.segments[0].pass += 1;
    st.segments[0].rows_done = 0;
    src.seek(0);
    last_ckpt = 0;
    if (ckpt && r.checkpoint_every) save_checkpoint(r.checkpoint, st, eng);
    }
    bar.finish();
    if (ckpt) save_checkpoint(r.checkpoint, st, eng);
    if (ckpt) {
        std::signal(SIGINT, SIG_DFL);
        std::signal(SIGTERM, SIG_DFL);
    }
    dist_hook::reduce(st, eng);  // under mpirun: merge into rank 0; the other ranks stop here
    return {std::move(st), std::move(eng)};
}

centering pick_centering(const run_args& r, bool default_centered) {
    if (r.center) return centering::centered;
    if (r.no_center) return centering::uncentered;
    return default_centered ? centering::centered : centering::uncentered;
}

json input_json(const run_state& st) {
    json a = json::array();
    for (const input_segment& s : st.segments) {
        json o;
        o["images"] = s.images.path;
        o["labels"] = s.labels.empty() ? json(nullptr) : json(s.labels.path);
        o["format"] = s.format;
        o["first_row"] = s.first_row;
        o["rows"] = s.rows_done;
        a.push_back(o);
    }
    return a;
}

std::vector<double> to_vec(const vector_t& v) { return std::vector<double>(v.begin(), v.end()); }

std::string out_path(const std::string& dir, const std::string& name) { return dir + "/" + name; }

void write_spectrum_files(const std::string& dir, const spectrum& s, bool quiet) {
    write_csv(out_path(dir, "spectrum.csv"), {"eigenvalue", "explained"}, {to_vec(s.eigenvalues), to_vec(s.explained)});
    chart c;
    c.csv = out_path(dir, "spectrum.csv");
    c.png = out_path(dir, "spectrum.png");
    c.title = std::string("Spectrum (") + centering_name(s.center) + ", " + route_name(s.method) + ")";
    c.xlabel = "k";
    c.ylabel = "eigenvalue";
    c.log_y = true;
    c.series = {"eigenvalue"};
    draw_chart(c, quiet);
    chart e = c;
    e.png = out_path(dir, "explained.png");
    e.title = "Cumulative explained fraction";
    e.ylabel = "explained fraction";
    e.log_y = false;
    e.first_column = 3;
    e.series = {"explained"};
    e.extra = {"set yrange [0:1.05]"};
    draw_chart(e, quiet);
}

// ---- commands ------------------------------------------------------------------------

int cmd_align(command_set& c) {
    const run_args& r = c.run_align;
    const centering cen = pick_centering(r, false);
    alignment_options opt;
    opt.measure = parse_measure(r.measure);
    run_result res = accumulate("align", c.data_align, r, true, cen);
    if (res.state.config.classes == 0)
        throw std::invalid_argument("align needs labels: pass --labels (or a checkpoint made with labels)");
    const statistics stats = res.eng.finish(cen);
    const alignment_result a = alignment_curve(stats, opt);
    if (r.json) {
        json j;
        j["n"] = a.n;
        j["d"] = a.dim;
        j["classes"] = a.classes;
        j["measure"] = measure_name(a.measure);
        j["centered"] = a.center == centering::centered;
        j["method"] = res.state.config.method;
        j["eigenvalues"] = to_vec(a.eigenvalues);
        j["alignment"] = to_vec(a.curve);
        j["contributions"] = to_vec(a.contributions);
        j["normaliser"] = a.normaliser;
        j["skipped"] = a.skipped;
        j["max_k"] = a.max_k;
        j["scale"] = res.state.config.scale;
        j["input"] = input_json(res.state);
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("n = %llu samples, D = %zu, C = %zu classes; method %s, %s, measure %s\n",
                    (unsigned long long)a.n, a.dim, a.classes, route_name(a.method), centering_name(a.center),
                    measure_name(a.measure));
        std::printf("%6s  %12s  %14s\n", "k", "alignment", "eigenvalue/n");
        std::vector<std::size_t> ks;
        for (std::size_t k = 1; k <= a.max_k; k *= 2) ks.push_back(k);
        if (a.max_k && (ks.empty() || ks.back() != a.max_k)) ks.push_back(a.max_k);
        for (std::size_t k : ks)
            std::printf("%6zu  %12.6f  %14.6g\n", k, a.curve(k - 1), a.eigenvalues(k - 1) / static_cast<double>(a.n));
        std::printf("(%zu directions under the eigenvalue tolerance skipped)\n", a.skipped);
    }
    if (!r.out.empty()) {
        make_dirs(r.out);
        write_csv(out_path(r.out, "alignment.csv"), {"alignment", "eigenvalue"}, {to_vec(a.curve), to_vec(a.eigenvalues)});
        chart ch;
        ch.csv = out_path(r.out, "alignment.csv");
        ch.png = out_path(r.out, "alignment.png");
        ch.title = std::string("Alignment of the top-k subspace with the labels (") + measure_name(a.measure) + ", " +
                   centering_name(a.center) + ")";
        ch.xlabel = "k (top principal directions)";
        ch.ylabel = "alignment";
        ch.log_x = true;
        ch.series = {"alignment"};
        draw_chart(ch, r.quiet);
        write_spectrum_files(r.out, stats.spec, r.quiet);
    }
    return 0;
}

int cmd_spectrum(command_set& c) {
    const run_args& r = c.run_spectrum;
    const centering cen = pick_centering(r, true);
    run_result res = accumulate("spectrum", c.data_spectrum, r, false, cen);
    const spectrum s = res.eng.get_spectrum(cen);
    if (r.json) {
        json j;
        j["n"] = s.n;
        j["d"] = s.dim;
        j["centered"] = s.center == centering::centered;
        j["method"] = res.state.config.method;
        j["eigenvalues"] = to_vec(s.eigenvalues);
        j["explained"] = to_vec(s.explained);
        j["total"] = s.total;
        j["error_bound"] = std::isnan(s.error_bound) ? json(nullptr) : json(s.error_bound);
        j["error_estimate"] = std::isnan(s.error_estimate) ? json(nullptr) : json(s.error_estimate);
        j["scale"] = res.state.config.scale;
        j["input"] = input_json(res.state);
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("n = %llu samples, D = %zu; method %s, %s\n", (unsigned long long)s.n, s.dim, route_name(s.method),
                    centering_name(s.center));
        std::printf("total second moment per sample: %.6g\n", s.total / static_cast<double>(std::max<std::uint64_t>(s.n, 1)));
        std::printf("%6s  %14s  %10s\n", "k", "eigenvalue/n", "explained");
        for (std::size_t k = 1; k <= std::min<std::size_t>(s.rank(), 10); ++k)
            std::printf("%6zu  %14.6g  %10.6f\n", k, s.eigenvalues(k - 1) / static_cast<double>(s.n), s.explained(k - 1));
        for (double f : {0.5, 0.75, 0.9, 0.95, 0.99}) {
            const std::size_t k = k_for_fraction(s.eigenvalues, s.total, f);
            if (k < s.rank() && s.total > 0) std::printf("%4.0f%% of the total in the top %zu directions\n", f * 100, k);
        }
    }
    if (!r.out.empty()) {
        make_dirs(r.out);
        write_spectrum_files(r.out, s, r.quiet);
    }
    return 0;
}

std::vector<std::size_t> parse_shape(const std::string& s) {
    std::vector<std::size_t> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
        std::size_t used = 0;
        unsigned long v = 0;
        try {
            v = std::stoul(part, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != part.size() || part.empty() || v == 0 || part[0] == '-')
            throw std::invalid_argument("--image-shape: expected H,W,C of positive integers, got '" + s + "'");
        out.push_back(v);
    }
    if (out.size() == 2) out.push_back(1);
    if (out.size() != 3) throw std::invalid_argument("--image-shape: expected H,W,C (or H,W), got '" + s + "'");
    // Refused here, not compared after wrapping: H·W·C ≡ D (mod 2^64) would pass the check
    // against the rows' width and then index far outside every image.
    checked_product(out.begin(), out.end(), "--image-shape H x W x C");
    return out;
}

// One image (D values, layout hwc or chw) stretched to [0, 255] by its own minimum and maximum, as HWC bytes.
std::vector<unsigned char> to_pixels(const std::vector<double>& v, std::size_t h, std::size_t w, std::size_t ch,
                                     bool chw) {
    double lo = v[0], hi = v[0];
    for (double x : v) lo = std::min(lo, x), hi = std::max(hi, x);
    const double span = hi > lo ? hi - lo : 1.0;
    std::vector<unsigned char> out(h * w * ch);
    for (std::size_t y = 0; y < h; ++y)
        for (std::size_t x = 0; x < w; ++x)
            for (std::size_t k = 0; k < ch; ++k) {
                const double val = chw ? v[(k * h + y) * w + x] : v[(y * w + x) * ch + k];
                out[(y * w + x) * ch + k] = static_cast<unsigned char>(std::lround(255.0 * (val - lo) / span));
            }
    return out;
}

int cmd_project(command_set& c) {
    const run_args& r = c.run_project;
    const project_args& p = c.project_opts;
    const centering cen = pick_centering(r, true);
    const std::vector<std::size_t> shape = parse_shape(p.image_shape);
    if (shape[2] != 1 && shape[2] != 3) throw std::invalid_argument("--image-shape: C must be 1 (gray) or 3 (RGB)");
    if (!(p.variance >= 0 && p.variance <= 1)) throw std::invalid_argument("--variance must lie in [0, 1]");
    if (p.count == 0) throw std::invalid_argument("--count must be at least 1");
    if (!r.from.empty())
        throw std::invalid_argument("project draws images from the data: it cannot run --from a checkpoint "
                                    "(use --checkpoint/--resume with the same DATA instead)");
    run_result res = accumulate("project", c.data_project, r, false, cen);
    const std::size_t d = res.state.config.dim;
    const std::size_t shape_values = checked_product(shape.begin(), shape.end(), "--image-shape H x W x C");
    if (shape_values != d)
        throw std::invalid_argument("--image-shape " + p.image_shape + " has " + std::to_string(shape_values) +
                                    " values but the rows have " + std::to_string(d));
    const spectrum s = res.eng.get_spectrum(cen);
    // MATH.md §5: the projector centers the rows and adds the mean back for display.
    projector_options po;
    po.fraction = p.variance;
    po.part = subspace_part::top;
    const vector_t no_mean;
    const vector_t mean = cen == centering::centered ? res.eng.mean() : no_mean;
    const subspace_projector top_proj = subspace_projector::from_spectrum(s, mean, po);
    po.part = subspace_part::bottom;
    const subspace_projector bottom_proj = subspace_projector::from_spectrum(s, mean, po);
    const std::size_t k = top_proj.k;
    // The originals: the first --count rows of the range (re-read; the statistics are done).
    const resolved_data rd = resolve_data(c.data_project, false);
    io::data_source src(rd.options);
    io::source_batch b;
    src.next(b, p.count);
    const std::size_t count = b.rows;
    const bool want_top = p.keep != "bottom", want_bottom = p.keep != "top";
    const matrix_t top = top_proj.project(b.view());
    const matrix_t bottom = bottom_proj.project(b.view());
    std::vector<double> originals(count * d);  // the rows as the statistics saw them (scaled)
    to_double_checked(b.view(), d, originals.data(), b.first_row);
    image_grid g;
    g.cols = count;
    g.rows = 1 + want_top + want_bottom;
    g.height = shape[0];
    g.width = shape[1];
    g.channels = shape[2];
    g.zoom = p.zoom;
    g.cells.resize(g.rows * g.cols);
    const bool chw = p.layout == "chw";
    for (std::size_t i = 0; i < count; ++i) {
        auto row_of = [&](const double* q) { return std::vector<double>(q + i * d, q + (i + 1) * d); };
        std::size_t row = 0;
        g.cells[row++ * count + i] = to_pixels(row_of(originals.data()), shape[0], shape[1], shape[2], chw);
        if (want_top) g.cells[row++ * count + i] = to_pixels(row_of(top.data()), shape[0], shape[1], shape[2], chw);
        if (want_bottom) g.cells[row++ * count + i] = to_pixels(row_of(bottom.data()), shape[0], shape[1], shape[2], chw);
    }
    write_png(p.out, g);
    if (r.json) {
        json j;
        j["n"] = s.n;
        j["d"] = d;
        j["centered"] = cen == centering::centered;
        j["method"] = res.state.config.method;
        j["variance"] = p.variance;
        j["k"] = k;
        j["explained"] = top_proj.explained;
        j["images"] = count;
        j["rows"] = want_bottom && want_top ? json::array({"original", "top", "bottom"})
                    : want_top              ? json::array({"original", "top"})
                                            : json::array({"original", "bottom"});
        j["png"] = p.out;
        std::printf("%s\n", j.dump().c_str());
    } else {
        std::printf("top subspace: k = %zu of %zu directions explain %.4f of the %s total (asked %.4f)\n", k, d,
                    top_proj.explained, centering_name(cen), p.variance);
        std::printf("wrote %s: %zu images; rows: originals%s%s\n", p.out.c_str(), count, want_top ? ", top" : "",
                    want_bottom ? ", bottom" : "");
    }
    return 0;
}

bool segments_overlap(const input_segment& a, const input_segment& b) {
    if (a.images.path != b.images.path || a.images.content_hash != b.images.content_hash) return false;
    const std::uint64_t a0 = a.first_row, a1 = a.first_row + a.rows_done;
    const std::uint64_t b0 = b.first_row, b1 = b.first_row + b.rows_done;
    return a0 < b1 && b0 < a1;
}

int cmd_merge(command_set& c) {
    if (c.merge_inputs.size() < 2) throw std::invalid_argument("merge needs at least two checkpoints");
    // Plain accumulator checkpoints (library level) merge too: all inputs must be of one kind.
    std::vector<checkpoint::header> headers;
    for (const std::string& f : c.merge_inputs) {
        std::ifstream is(f, std::ios::binary);
        if (!is) throw file_error(f, 0, "cannot open checkpoint for reading");
        headers.push_back(checkpoint::read_header(is, f));
    }
    for (std::size_t i = 1; i < headers.size(); ++i)
        if (headers[i].kind != headers[0].kind)
            throw std::invalid_argument("cannot merge " + c.merge_inputs[0] + " (" + checkpoint_kind_name(headers[0].kind) +
                                        ") with " + c.merge_inputs[i] + " (" + checkpoint_kind_name(headers[i].kind) + ")");
    if (headers[0].kind == checkpoint::state_kind::moments) {
        moment_accumulator acc = checkpoint::load_file<moment_accumulator>(c.merge_inputs[0]);
        for (std::size_t i = 1; i < c.merge_inputs.size(); ++i) {
            try {
                acc.merge(checkpoint::load_file<moment_accumulator>(c.merge_inputs[i]));
            } catch (const std::invalid_argument& e) {
                throw std::invalid_argument("cannot merge " + c.merge_inputs[i] + ": " + e.what());
            }
        }
        checkpoint::save_file(c.merge_output, acc);
        std::printf("merged %zu moment checkpoints: n = %llu -> %s\n", c.merge_inputs.size(), (unsigned long long)acc.n(),
                    c.merge_output.c_str());
        return 0;
    }
    if (headers[0].kind != run_state::kind)
        throw std::invalid_argument(std::string("merge reads recalign run checkpoints or moment checkpoints, not ") +
                                    checkpoint_kind_name(headers[0].kind));
    run_state out = load_run_state(c.merge_inputs[0]);
    engine eng(out.config);
    eng.load(out.accumulator, c.merge_inputs[0]);
    for (std::size_t i = 1; i < c.merge_inputs.size(); ++i) {
        const std::string& f = c.merge_inputs[i];
        run_state st = load_run_state(f);
        if (const std::string d = out.config.difference(st.config, c.merge_inputs[0], f); !d.empty())
            throw std::invalid_argument("cannot merge " + f + " into " + c.merge_inputs[0] + ": " + d);
        for (const input_segment& a : out.segments)
            for (const input_segment& b : st.segments)
                if (segments_overlap(a, b))
                    throw std::invalid_argument("cannot merge " + f + ": its rows " + std::to_string(b.first_row) + ".." +
                                                std::to_string(b.first_row + b.rows_done) + " of " + b.images.path +
                                                " overlap rows " + std::to_string(a.first_row) + ".." +
                                                std::to_string(a.first_row + a.rows_done) +
                                                " already in the merge (they would be counted twice)");
        engine other(st.config);
        other.load(st.accumulator, f);
        eng.merge(other);
        out.segments.insert(out.segments.end(), st.segments.begin(), st.segments.end());
    }
    out.command = "merge";
    save_checkpoint(c.merge_output, out, eng);
    std::printf("merged %zu checkpoints: n = %llu samples from %zu segments -> %s\n", c.merge_inputs.size(),
                (unsigned long long)eng.n(), out.segments.size(), c.merge_output.c_str());
    return 0;
}

std::string hex(std::uint64_t v) {
    char b[32];
    std::snprintf(b, sizeof b, "0x%016llx", (unsigned long long)v);
    return b;
}

// Samples in a library-level checkpoint of a kind the CLI does not analyse, loading it in full:
// `info` on a truncated or corrupt checkpoint is an error (exit 2) whatever the kind, not a
// header printed as if the rest were sound.
std::uint64_t library_state_samples(const std::string& f, checkpoint::state_kind kind) {
    switch (kind) {
        case checkpoint::state_kind::frequent_directions: return checkpoint::load_file<frequent_directions>(f).n();
        case checkpoint::state_kind::nystrom: return checkpoint::load_file<nystrom_sketch>(f).n();
        case checkpoint::state_kind::tracker: return checkpoint::load_file<alignment_tracker>(f).n();
        case checkpoint::state_kind::noise: return checkpoint::load_file<monte_carlo_noise>(f).n();
        default: break;
    }
    throw file_error(f, 16, "unknown checkpoint kind " + std::to_string(static_cast<std::uint32_t>(kind)) +
                                " (written by a newer recalign?)");
}

int cmd_info(command_set& c) {
    const std::string& f = c.info_file;
    checkpoint::header h;
    std::uint64_t file_size = 0;
    {
        std::ifstream is(f, std::ios::binary);
        if (!is) throw file_error(f, 0, "cannot open checkpoint for reading");
        h = checkpoint::read_header(is, f);
        is.seekg(0, std::ios::end);
        file_size = static_cast<std::uint64_t>(is.tellg());
    }
    // A header may claim up to checkpoint::max_payload_bytes: a file that does not hold
    // them is truncated or corrupt, said here rather than printed as if it were whole.
    if (file_size - checkpoint::header_bytes < h.payload_bytes)
        throw file_error(f, file_size, "truncated checkpoint: the header announces a payload of " +
                                           std::to_string(h.payload_bytes) + " bytes, the file has " +
                                           std::to_string(file_size - checkpoint::header_bytes) + " after the header");
    json j;
    j["file"] = f;
    j["kind"] = checkpoint_kind_name(h.kind);
    j["format_version"] = h.version;
    j["dim"] = h.dim;
    j["aux"] = h.aux;
    j["config_hash"] = hex(h.config_hash);
    j["payload_bytes"] = h.payload_bytes;
    j["file_bytes"] = file_size;
    if (h.kind == run_state::kind) {
        const run_state st = load_run_state(f);
        j["command"] = st.command;
        j["method"] = st.config.method;
        j["classes"] = st.config.classes;
        j["scale"] = st.config.scale;
        if (st.config.method != "exact") {
            j["rank"] = st.config.rank;
            j["passes"] = st.config.passes;
            j["seed"] = st.config.seed;
        }
        j["n"] = st.n;
        j["complete"] = st.complete();
        json segs = json::array();
        for (const input_segment& s : st.segments) {
            json o;
            o["images"] = s.images.path;
            o["images_bytes"] = s.images.size;
            o["images_hash"] = hex(s.images.content_hash);
            o["labels"] = s.labels.empty() ? json(nullptr) : json(s.labels.path);
            o["format"] = s.format;
            o["first_row"] = s.first_row;
            o["rows_total"] = s.rows_total;
            o["rows_done"] = s.rows_done;
            o["batch"] = s.batch;
            o["pass"] = s.pass;
            segs.push_back(o);
        }
        j["segments"] = segs;
    } else if (h.kind == checkpoint::state_kind::moments) {
        const moment_accumulator m = checkpoint::load_file<moment_accumulator>(f);
        j["n"] = m.n();
        j["classes"] = m.classes();
    } else {
        j["n"] = library_state_samples(f, h.kind);
    }
    if (c.info_json) {
        std::printf("%s\n", j.dump().c_str());
        return 0;
    }
    std::printf("%s: recalign checkpoint, format version %u, %llu bytes\n", f.c_str(), h.version,
                (unsigned long long)file_size);
    std::printf("  kind          %s\n  dimension     %llu\n  aux           %llu\n  config hash   %s\n  payload       %llu bytes\n",
                checkpoint_kind_name(h.kind).c_str(), (unsigned long long)h.dim, (unsigned long long)h.aux,
                hex(h.config_hash).c_str(), (unsigned long long)h.payload_bytes);
    if (j.contains("n")) std::printf("  samples       %llu\n", (unsigned long long)j["n"].get<std::uint64_t>());
    if (h.kind == run_state::kind) {
        std::printf("  command       %s\n  method        %s\n  classes       %llu\n  scale         %.17g\n  complete      %s\n",
                    j["command"].get<std::string>().c_str(), j["method"].get<std::string>().c_str(),
                    (unsigned long long)j["classes"].get<std::uint64_t>(), j["scale"].get<double>(),
                    j["complete"].get<bool>() ? "yes" : "no");
        for (const auto& s : j["segments"]) {
            std::printf("  input         %s rows %llu..%llu (%llu of %llu read in pass %llu, batch %llu, %s)\n",
                        s["images"].get<std::string>().c_str(), (unsigned long long)s["first_row"].get<std::uint64_t>(),
                        (unsigned long long)(s["first_row"].get<std::uint64_t>() + s["rows_total"].get<std::uint64_t>()),
                        (unsigned long long)s["rows_done"].get<std::uint64_t>(),
                        (unsigned long long)s["rows_total"].get<std::uint64_t>(),
                        (unsigned long long)s["pass"].get<std::uint64_t>() + 1,
                        (unsigned long long)s["batch"].get<std::uint64_t>(), s["format"].get<std::string>().c_str());
            if (!s["labels"].is_null()) std::printf("  labels        %s\n", s["labels"].get<std::string>().c_str());
        }
    }
    return 0;
}

std::vector<double> parse_list(const std::string& s, const char* what) {
    std::vector<double> out;
    std::stringstream ss(s);
    std::string part;
    while (std::getline(ss, part, ',')) {
        std::size_t used = 0;
        double v = 0;
        try {
            v = std::stod(part, &used);
        } catch (const std::exception&) {
            used = 0;
        }
        if (used != part.size() || part.empty())
            throw std::invalid_argument(std::string(what) + ": '" + part + "' is not a number (in '" + s + "')");
        out.push_back(v);
    }
    if (out.empty()) throw std::invalid_argument(std::string(what) + ": empty list");
    return out;
}

int cmd_tradeoff(command_set& c) {
    const run_args& r = c.run_tradeoff;
    const centering cen = pick_centering(r, false);
    tradeoff_options opt;
    opt.lambdas = parse_list(c.tradeoff_opts.lambdas, "--lambda");
    opt.k = c.tradeoff_opts.k;
    run_result res = accumulate("tradeoff", c.data_tradeoff, r, true, cen);
    if (res.state.config.classes == 0)
        throw std::invalid_argument("tradeoff needs labels: pass --labels (or a checkpoint made with labels)");
    if (opt.k == 0 || opt.k > res.state.config.dim)
        throw std::invalid_argument("--k must lie in [1, " + std::to_string(res.state.config.dim) + "]");
    res.eng.moments();  // refuses a sketch run (the trade-off needs the complete spectrum)
    const tradeoff_result t = tradeoff(res.eng.finish(cen), opt);
    if (r.json) {
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
            a.push_back(o);
        }
        std::printf("%s\n", a.dump().c_str());
    } else {
        std::printf("n = %llu samples, D = %zu, C = %zu classes, K = %zu (%zu null directions of Sxx dropped); %s\n",
                    (unsigned long long)t.n, t.dim, t.classes, t.k, t.dropped, centering_name(t.center));
        std::printf("losses per sample at the optimum of |WᵀVᵀX - Y|² + λ|ZᵀVᵀX - X|² (Theorem 1):\n");
        std::printf("%12s  %16s  %20s\n", "lambda", "supervised/n", "reconstruction/n");
        const double n = static_cast<double>(std::max<std::uint64_t>(t.n, 1));
        for (const tradeoff_point& p : t.points)
            std::printf("%12.6g  %16.8g  %20.8g\n", p.lambda, p.supervised_loss / n, p.reconstruction_loss / n);
    }
    if (!r.out.empty()) {
        make_dirs(r.out);
        std::vector<double> l, s, rl;
        for (const tradeoff_point& p : t.points) l.push_back(p.lambda), s.push_back(p.supervised_loss), rl.push_back(p.reconstruction_loss);
        write_csv(out_path(r.out, "tradeoff.csv"), {"lambda", "supervised_loss", "reconstruction_loss"}, {l, s, rl}, "");
        chart ch;
        ch.csv = out_path(r.out, "tradeoff.csv");
        ch.png = out_path(r.out, "tradeoff.png");
        ch.title = "Theorem 1: losses at the optimum, K = " + std::to_string(t.k);
        ch.xlabel = "lambda";
        ch.ylabel = "loss";
        ch.series = {"supervised", "reconstruction"};
        bool positive = !l.empty();
        for (double v : l) positive = positive && v > 0;
        ch.log_x = positive;
        ch.log_y = true;
        draw_chart(ch, r.quiet);
    }
    return 0;
}

std::vector<std::size_t> default_k_list(std::size_t max_k) {
    std::vector<std::size_t> ks;
    for (std::size_t k : {1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000})
        if (k <= max_k) ks.push_back(k);
    if (max_k && (ks.empty() || ks.back() != max_k)) ks.push_back(max_k);
    return ks;
}

int cmd_denoise(command_set& c) {
    const run_args& r = c.run_denoise;
    const denoise_args& o = c.denoise_opts;
    const centering cen = pick_centering(r, false);
    const std::vector<std::size_t> shape_v = parse_shape(o.image_shape);
    image_shape shape;
    shape.height = shape_v[0];
    shape.width = shape_v[1];
    shape.channels = shape_v[2];
    shape.layout = o.layout == "chw" ? image_layout::chw : image_layout::hwc;
    std::vector<noise_spec> specs;
    for (const std::string& text : o.noises) {
        noise_spec s;
        try {
            s = parse_noise_spec(text);
            if (o.monte_carlo) {
                s.draws = o.monte_carlo;
                if (!s.seed) s.seed = r.seed;
            }
            validate(s);
        } catch (const std::invalid_argument& e) {
            throw std::invalid_argument("--noise " + text + ": " + e.what());
        }
        specs.push_back(s);
    }
    bool monte_carlo = false;
    for (const noise_spec& s : specs) monte_carlo = monte_carlo || s.draws > 0;
    if (monte_carlo && cen == centering::centered)
        throw std::invalid_argument("Monte-Carlo noise expectations are uncentered sums: use --no-center with --monte-carlo");
    run_result res = accumulate("denoise", c.data_denoise, r, true, cen);
    if (res.state.config.classes == 0)
        throw std::invalid_argument("denoise needs labels: pass --labels (or a checkpoint made with labels)");
    const std::size_t d = res.state.config.dim;
    if (shape.dim() != d)
        throw std::invalid_argument("--image-shape " + o.image_shape + " has " + std::to_string(shape.dim()) +
                                    " values but the rows have " + std::to_string(d));
    const moment_accumulator& m = res.eng.moments();
    const statistics clean_stats = res.eng.finish(cen);  // one eigendecomposition for every noise

    // Noise expectations: closed forms from the clean second moment; Monte Carlo needs one
    // more pass over the data (MATH.md §4), which is not checkpointed.
    std::vector<noise_moments> noisy(specs.size());
    std::vector<double> mc_error(specs.size(), std::numeric_limits<double>::quiet_NaN());
    const matrix_t& sxx = *clean_stats.second_moment;
    std::vector<std::size_t> mc_index;
    std::vector<monte_carlo_noise> mc;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        if (specs[i].draws == 0) {
            noisy[i] = closed_form_noise(specs[i], sxx, m.n(), shape);
        } else {
            monte_carlo_options mo;
            mo.dim = d;
            mo.draws = specs[i].draws;
            mo.replicates = specs[i].draws % 2 == 0 ? 2 : 1;
            mo.seed = specs[i].seed;
            mo.name = to_string(specs[i]);
            mc.emplace_back(mo, make_corrupter(specs[i], shape));
            mc_index.push_back(i);
        }
    }
    if (!mc.empty()) {
        if (!r.from.empty()) throw std::invalid_argument("--monte-carlo needs the data: it cannot run --from a checkpoint");
        const resolved_data rd = resolve_data(c.data_denoise, true);
        io::data_source src(rd.options);
        progress bar(!r.quiet && ::isatty(2), src.total(), 0);
        io::source_batch b;
        while (src.next(b)) {
            for (monte_carlo_noise& acc : mc) acc.update(b.view(), b.first_row);
            bar.update(src.position());
        }
        bar.finish();
        for (std::size_t j = 0; j < mc.size(); ++j) {
            monte_carlo_estimate e = mc[j].estimate();
            mc_error[mc_index[j]] = e.g_stderr_fro;
            noisy[mc_index[j]] = std::move(e.moments);
        }
    }

    denoising_options dopt;
    dopt.measure = parse_measure(r.measure);
    noise_impact_options iopt;
    std::vector<denoising_result> results;
    std::vector<noise_impact_result> impacts;
    for (std::size_t i = 0; i < specs.size(); ++i) {
        results.push_back(denoising_alignment(clean_stats, noisy[i], dopt));
        impacts.push_back(noise_impact(clean_stats, noisy[i], iopt));
    }
    alignment_options aopt;
    aopt.measure = dopt.measure;
    const alignment_result clean = alignment_curve(clean_stats, aopt);

    std::vector<std::size_t> ks;
    if (!o.k_list.empty()) {
        for (double v : parse_list(o.k_list, "--k-list")) {
            if (!(v >= 1) || v != std::floor(v) || v > static_cast<double>(d))
                throw std::invalid_argument("--k-list: " + std::to_string(v) + " is not an integer in [1, " +
                                            std::to_string(d) + "]");
            ks.push_back(static_cast<std::size_t>(v));
        }
    } else {
        ks = default_k_list(clean.max_k);
    }
    if (r.json) {
        json j;
        j["n"] = m.n();
        j["d"] = d;
        j["classes"] = m.classes();
        j["measure"] = measure_name(dopt.measure);
        j["centered"] = cen == centering::centered;
        j["method"] = "exact";
        j["clean"] = to_vec(clean.curve);
        json a = json::array();
        for (std::size_t i = 0; i < specs.size(); ++i) {
            json e;
            e["spec"] = to_string(specs[i]);
            e["alignment"] = to_vec(results[i].curve);
            e["relative"] = to_vec(results[i].relative_difference);
            e["impact"] = to_vec(impacts[i].distance);
            e["impact_normalised"] = to_vec(impacts[i].normalised);
            e["monte_carlo"] = specs[i].draws > 0;
            e["g_stderr_fro"] = std::isnan(mc_error[i]) ? json(nullptr) : json(mc_error[i]);
            a.push_back(e);
        }
        j["noises"] = a;
        j["input"] = input_json(res.state);
        std::string text = j.dump(-1, ' ', false, json::error_handler_t::replace);
        std::printf("%s\n", text.c_str());
    } else {
        std::printf("n = %llu samples, D = %zu, C = %zu classes; %s, measure %s\n", (unsigned long long)m.n(), d,
                    m.classes(), centering_name(cen), measure_name(dopt.measure));
        for (std::size_t i = 0; i < specs.size(); ++i) {
            std::printf("\nnoise %s%s\n", to_string(specs[i]).c_str(),
                        specs[i].draws ? " (Monte Carlo)" : " (closed form)");
            std::printf("%6s  %12s  %12s  %12s  %14s\n", "k", "clean", "denoising", "relative", "impact (sin²)");
            for (std::size_t k : ks) {
                auto at = [&](const vector_t& v) { return k <= v.size() ? v(k - 1) : std::numeric_limits<double>::quiet_NaN(); };
                std::printf("%6zu  %12.6f  %12.6f  %12.4g  %14.4g\n", k, at(clean.curve), at(results[i].curve),
                            at(results[i].relative_difference), at(impacts[i].distance));
            }
        }
    }
    if (!r.out.empty()) {
        make_dirs(r.out);
        std::size_t rows = clean.curve.size();
        for (const denoising_result& x : results) rows = std::min<std::size_t>(rows, x.curve.size());
        auto head = [rows](const vector_t& v) {
            std::vector<double> out(rows, std::numeric_limits<double>::quiet_NaN());
            for (std::size_t i = 0; i < rows && i < v.size(); ++i) out[i] = v(i);
            return out;
        };
        std::vector<std::string> names{"clean"}, rel_names, titles;
        std::vector<std::vector<double>> cols{head(clean.curve)}, rel_cols;
        for (std::size_t i = 0; i < specs.size(); ++i) {
            const std::string tag = "noise" + std::to_string(i + 1);
            names.push_back(tag + "_alignment");
            cols.push_back(head(results[i].curve));
            names.push_back(tag + "_relative");
            cols.push_back(head(results[i].relative_difference));
            names.push_back(tag + "_impact");
            cols.push_back(head(impacts[i].distance));
            rel_names.push_back(tag);
            rel_cols.push_back(head(results[i].relative_difference));
            titles.push_back(to_string(specs[i]));
        }
        write_csv(out_path(r.out, "denoise.csv"), names, cols);
        write_csv(out_path(r.out, "relative.csv"), rel_names, rel_cols);
        chart ch;
        ch.csv = out_path(r.out, "relative.csv");
        ch.png = out_path(r.out, "relative.png");
        ch.title = "Relative alignment difference, denoising vs clean (paper's Figure 7)";
        ch.xlabel = "k";
        ch.ylabel = "(denoising - clean) / clean";
        ch.log_x = true;
        ch.series = titles;
        ch.extra = {"set arrow from graph 0, first 0 to graph 1, first 0 nohead dt 2"};
        draw_chart(ch, r.quiet);
    }
    return 0;
}

}  // namespace

void register_commands(CLI::App& app, command_set& c) {
    c.align = app.add_subcommand("align", "Alignment curve of the top-k principal subspace with the labels (paper's Eq. 7); "
                                          "uncentered by default");
    add_data_options(c.align, c.data_align);
    add_run_options(c.align, c.run_align, false);
    c.align->add_option("--measure", c.run_align.measure, "paper: Eq. 7; rank: normalised to reach 1; fit: share of "
                                                          "|Y|² a linear probe explains")
        ->check(CLI::IsMember({"paper", "rank", "fit"}))->capture_default_str();
    c.align->add_option("--out", c.run_align.out, "Directory for CSV files and PNG charts");

    c.spectrum = app.add_subcommand("spectrum", "Eigenvalues and explained fractions of the (centered by default) "
                                                "second-moment matrix");
    add_data_options(c.spectrum, c.data_spectrum);
    add_run_options(c.spectrum, c.run_spectrum, true);
    c.spectrum->add_option("--out", c.run_spectrum.out, "Directory for CSV files and PNG charts");

    c.project = app.add_subcommand("project", "PNG grid of images and their projections on the top subspace "
                                              "(explaining --variance of the total) and its complement (paper's Fig. 9)");
    add_data_options(c.project, c.data_project);
    add_run_options(c.project, c.run_project, true);
    c.project->add_option("--keep", c.project_opts.keep, "Projection rows to draw under the originals")
        ->check(CLI::IsMember({"top", "bottom", "both"}))->capture_default_str();
    c.project->add_option("--variance", c.project_opts.variance, "Fraction F of the total the top subspace explains")
        ->capture_default_str();
    c.project->add_option("--image-shape", c.project_opts.image_shape, "H,W,C (C = 1 gray or 3 RGB)")->required();
    c.project->add_option("--layout", c.project_opts.layout, "Order of the values in a row")
        ->check(CLI::IsMember({"hwc", "chw"}))->capture_default_str();
    c.project->add_option("--out", c.project_opts.out, "Output PNG file")->required();
    c.project->add_option("--count", c.project_opts.count, "Images (columns) in the grid")->capture_default_str();
    c.project->add_option("--zoom", c.project_opts.zoom, "Pixel magnification")->capture_default_str()
        ->check(CLI::Range(1, 16));

    c.tradeoff = app.add_subcommand("tradeoff", "Supervised and reconstruction losses at the optimum of the "
                                                "Theorem 1 trade-off, for each lambda; uncentered by default");
    add_data_options(c.tradeoff, c.data_tradeoff);
    add_run_options(c.tradeoff, c.run_tradeoff, false);
    c.tradeoff->add_option("--lambda", c.tradeoff_opts.lambdas, "Comma-separated lambdas L1,L2,... (>= 0)")->required();
    c.tradeoff->add_option("--k", c.tradeoff_opts.k, "Latent dimension K")->required();
    c.tradeoff->add_option("--out", c.run_tradeoff.out, "Directory for the CSV file and PNG chart");

    c.denoise = app.add_subcommand("denoise", "Alignment of the optimal denoising representation (Theorem 3) against "
                                              "the clean curve, and the label-free noise impact; uncentered by default");
    add_data_options(c.denoise, c.data_denoise);
    add_run_options(c.denoise, c.run_denoise, false);
    c.denoise->add_option("--measure", c.run_denoise.measure, "Alignment measure (as for align)")
        ->check(CLI::IsMember({"paper", "rank", "fit"}))->capture_default_str();
    c.denoise->add_option("--image-shape", c.denoise_opts.image_shape, "H,W,C of the images (C = channels)")->required();
    c.denoise->add_option("--layout", c.denoise_opts.layout, "Order of the values in a row")
        ->check(CLI::IsMember({"hwc", "chw"}))->capture_default_str();
    c.denoise->add_option("--noise", c.denoise_opts.noises,
                          "Noise model, repeatable: gaussian:sigma=S | dropout:ratio=P | "
                          "mask:patch=PHxPW,ratio=P[,scheme=bernoulli|fixed]")->required();
    c.denoise->add_option("--monte-carlo", c.denoise_opts.monte_carlo,
                          "Estimate the noise expectations with S corruptions per sample (one more pass over the "
                          "data) instead of the closed forms");
    c.denoise->add_option("--k-list", c.denoise_opts.k_list, "Comma-separated k at which the text table reports");
    c.denoise->add_option("--out", c.run_denoise.out, "Directory for CSV files and the Figure 7 chart");

    c.merge = app.add_subcommand("merge", "Merge checkpoints of runs over disjoint data into one");
    c.merge->add_option("checkpoints", c.merge_inputs, "Checkpoints to merge")->required();
    c.merge->add_option("-o,--output", c.merge_output, "Merged checkpoint")->required();

    c.info = app.add_subcommand("info", "Print a checkpoint's header and summary");
    c.info->add_option("checkpoint", c.info_file, "Checkpoint file")->required();
    c.info->add_flag("--json", c.info_json, "Print one JSON document");
}

int run_selected(command_set& c) {
    auto fail = [](int code, const std::string& what) {
        std::string msg = what;
        for (char& ch : msg)
            if (ch == '\n') ch = ' ';
        std::fflush(stdout);
        std::fprintf(stderr, "recalign: %s%s\n", code == 1 ? "internal error: " : "", msg.c_str());
        return code;
    };
    try {
        if (c.align->parsed()) return cmd_align(c);
        if (c.spectrum->parsed()) return cmd_spectrum(c);
        if (c.project->parsed()) return cmd_project(c);
        if (c.merge->parsed()) return cmd_merge(c);
        if (c.info->parsed()) return cmd_info(c);
        if (c.tradeoff->parsed()) return cmd_tradeoff(c);
        if (c.denoise->parsed()) return cmd_denoise(c);
        return fail(2, "no command given (see --help)");
    } catch (const interrupted&) {
        return 130;
    } catch (const dist_hook::not_root&) {
        return 0;
    } catch (const dist_hook::collective_refusal& e) {
        dist_hook::refused_alike();
        return dist_hook::rank() == 0 ? fail(2, e.what()) : 2;
    } catch (const file_error& e) {
        return fail(2, e.what());
    } catch (const user_error& e) {
        return fail(2, e.what());
    } catch (const std::invalid_argument& e) {
        return fail(2, e.what());
    } catch (const std::system_error& e) {
        return fail(2, e.what());
    } catch (const std::bad_alloc&) {
        return fail(1, "out of memory");
    } catch (const std::exception& e) {
        return fail(1, e.what());
    }
}

}  // namespace recalign::cli

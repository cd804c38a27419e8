// Registration of every command's options on the CLI11 app: names, help texts, defaults and
// the checks CLI11 can make on one value (ranges, choices). Checks that relate options to
// one another or to a file's header are in validate.cpp.
#include "options.hpp"
#include "sketch_route.hpp"  // verify_help

namespace recalign::cli {

namespace {

const char* data_footer =
    "DATA defaults to the Fashion-MNIST training set (60000 images with labels, pixels scaled by 1/255).";

// Unsigned options: CLI11 would read "-5" as 2^64 - 5; refuse it as what was typed.
const CLI::Validator non_negative = CLI::NonNegativeNumber;

// --layout is the data's own option, except for project and denoise, whose --layout (the
// order of the values in a row) also orders the decoded images (their commands copy it).
void add_data_options(CLI::App* s, data_options& d, bool layout = true) {
    const char* g = "DATA (default: the Fashion-MNIST training set)";
    s->add_option("--images", d.images,
                  "Images (samples): an IDX (.gz or plain), .npy or raw file, a CIFAR-10/100 binary batch, an image "
                  "folder ROOT/<class>/.../<image> (JPEG, PNG) or a list file of 'relative/path label' lines; repeat "
                  "to read several as one stream; - (or a pipe): raw rows from standard input, read once (--raw-shape N,D)")->group(g);
    s->add_option("--labels", d.labels, "Integer class labels, one per row: IDX or .npy (one per --images; "
                                        "folders, lists and CIFAR carry their labels)")->group(g);
    s->add_option("--classes", d.classes, "Number of classes C (default: largest label + 1, from one pass over the labels)")
        ->check(non_negative)->group(g);
    s->add_option("--format", d.format, "Images format (auto: a directory is a folder, --root means a list, CIFAR "
                                        "is told by its record size where only one kind fits)")
        ->check(CLI::IsMember({"auto", "idx", "npy", "raw", "folder", "list", "cifar10", "cifar100"}))
        ->capture_default_str()->group(g);
    const char* im = "IMAGES (folder, list, cifar10, cifar100)";
    s->add_option("--root", d.root, "List files: the directory their paths are relative to (default: the list "
                                    "file's own directory); implies --format list")->group(im);
    s->add_option("--classes-from", d.classes_from,
                  "List files: class names and ids from an image folder (its sorted class folders, as ImageFolder "
                  "numbers them: pass the training folder) or a text file of one name per line, in its order")
        ->group(im);
    s->add_option("--channels", d.channels, "1: gray as PIL's convert(\"L\"); 3: RGB as convert(\"RGB\")")
        ->check(CLI::IsMember({1, 3}))->capture_default_str()->group(im);
    s->add_option("--resize", d.resize, "Shorter side to S pixels (torchvision Resize(S): bilinear with antialiasing)")
        ->check(CLI::Range(1, 1 << 16))->group(im);
    s->add_option("--crop", d.crop, "Centre crop H,W, or S for S,S (torchvision CenterCrop((H, W)); pads with 0 when larger); "
                                    "without --resize/--crop every image must have the first one's size")->group(im);
    if (layout)
        s->add_option("--layout", d.layout, "Order of the values in a row: hwc (pixel-major, as PIL/NumPy) or chw "
                                            "(channel planes, as torch's ToTensor)")
            ->check(CLI::IsMember({"hwc", "chw"}))->capture_default_str()->group(im);
    s->add_option("--label-kind", d.label_kind, "CIFAR-100 labels: fine (100 classes, default) or coarse (20)")
        ->check(CLI::IsMember({"fine", "coarse"}))->group(im);
    s->add_option("--threads", d.threads, "Decoding threads (default: the number of cores); results are the same "
                                          "for any number")->check(CLI::Range(1, 1024))->group(im);
    s->add_flag("--skip-unreadable", d.skip_unreadable, "Leave out image files that do not decode (corrupt, "
                                                        "truncated, not an image), count and list them in the output "
                                                        "(skipped_files), instead of stopping with exit status 2")
        ->group(im);
    s->add_option("--raw-shape", d.raw_shape, "Raw files: N,D (N = 0: as many rows as the file holds)")->group(g);
    s->add_option("--raw-dtype", d.raw_dtype, "Raw files: element type")->check(CLI::IsMember({"u8", "f4", "f8"}))
        ->capture_default_str()->group(g);
    s->add_option("--scale", d.scale,
                  "Multiply every value by S (a number or a fraction such as 1/255); default 1/255 for the "
                  "default data set, 1 otherwise")->group(g);
    s->add_option("--batch", d.batch, "Rows per minibatch")->capture_default_str()->check(CLI::Range(1, 1 << 30))->group(g);
    s->add_option("--skip", d.skip, "Start at this row of the file")->capture_default_str()->check(non_negative)->group(g);
    s->add_option("--limit", d.limit, "Read this many rows (0 = to the end of the file; more rows than the file holds after --skip is refused)")
        ->capture_default_str()->check(non_negative)->group(g);
    s->footer(data_footer);
}

void add_sketch_options(CLI::App* s, run_options& r) {
    s->add_option("--method", r.method, "Route to the spectrum: exact moments, Frequent Directions or Nyström sketch")
        ->check(CLI::IsMember({"exact", "fd", "nystrom"}))->capture_default_str();
    s->add_option("--rank", r.rank, "Sketch rank K (fd: a sketch of ℓ = min(3K, D) rows, FD's guarantee with ε = 1/2: the top-K basis misses "
                  "at most half the best rank-K residual beyond it; before this version ℓ = 2K, whose checkpoints resume "
                  "with it; nystrom)")->check(non_negative);
    s->add_option("--passes", r.passes, "Passes over the data (nystrom; with --tolerance the most). Default 1; 2 for a denoise "
                  "run that refines a masking noise (--refine), whose refinement then converges in fewer passes than the "
                  "second one costs (the 224x224x3 demo: 11:28 against 12:28, converged after 6 refinement passes instead "
                  "of ending at the budget of 8; BENCHMARKS.md). align, spectrum, project with Q >= 2: "
                  "block Krylov over all Q passes, S = K + max(K, 10) columns per pass, memory at most about 8 D (6 Q S + 2 S + 31) "
                  "bytes (the basis restarts before exceeding D columns; refused early if it does not fit); denoise, tradeoff and one pass: K + 10 columns, "
                  "power (subspace) iterations")
        ->check(non_negative);
    s->add_option("--tolerance", r.tolerance,
                  "nystrom: after each pass, stop once the probes' estimate of ‖C − Ĉ_K‖_F / tr(C) is at most T "
                  "(0 < T < 1), --passes Q (at least 2) then being the most passes to run; the result says whether T "
                  "was met and after how many passes. The estimate includes the tail beyond rank K, which no pass "
                  "removes: a T below it runs all Q passes")
        ->check(CLI::Range(0.0, 1.0));
    s->add_option("--test-matrix", r.test_matrix,
                  "nystrom: the random test matrix Ω of the first pass. signs: dense ±1 (Gaussian where D < 64); "
                  "sparse: 8 entries ±1 a row in random columns (Tropp et al. 2019), so X Ω costs 8 additions a value "
                  "instead of a GEMM of K + p columns: the first pass's updates 1.36x faster on one core and 1.2-2.6x on "
                  "two at D = 150,528 (BENCHMARKS.md 17.1), as accurate as signs in the tests and benchmarks; needs "
                  "D x 8 >= 32 (K + p). Later passes and the error probes are dense either way. Part of the run's "
                  "configuration (a resume or merge must repeat it)")
        ->check(CLI::IsMember({"signs", "sparse"}))->capture_default_str();
}

void add_common_method_options(CLI::App* s, run_options& r) {
    s->add_option("--seed", r.seed, "Seed of what a run draws: --method nystrom's test matrix, --jitter's noise and the Monte-Carlo "
                                    "noises without their own seed=N; refused by a run that draws none of them")->capture_default_str()
        ->check(non_negative);
    s->add_option("--precision", r.precision,
                  "Per-batch arithmetic for float32 input (.npy <f4, IDX f32, raw f4): f64 converts it to double; "
                  "f32-kernels computes each batch's scatter (exact route, SSYRK) and products (nystrom, SGEMM) in "
                  "single precision and accumulates across batches in double: about 1.3-2x faster, relative error "
                  "about 7e-8 in the second moment and 1e-10 to 3e-9 in the eigenvalues on Fashion-MNIST "
                  "(BENCHMARKS.md). Nyström uses it for uint8 input too (the exact route computes uint8 input exactly "
                  "at any precision: integer SSYRK on x - 128); --method fd runs its shrinks (Gram matrix, "
                  "eigendecomposition, rotation) in single precision for any input, about 2x faster, its bound then "
                  "holding up to about 1e-7 of the largest eigenvalue per shrink; float64 input on the exact route uses "
                  "double. Not part of the run's "
                  "configuration: such states merge with f64 ones, and --resume keeps the checkpoint's precision")
        ->check(CLI::IsMember({"f64", "f32-kernels"}))->capture_default_str();
    s->add_option("--memory", r.memory_gib,
                  "Memory the run may use, in GiB (default: this machine's physical memory). A run that needs more "
                  "is refused before reading data; the exact route's eigensolver takes LAPACK's dsyevd (fast, "
                  "2 D x D of workspace) where it fits in what is left, dsyevr (O(D) workspace) otherwise")
        ->check(CLI::Range(0.0, 1e9));
}

// `sketches` false (figures: the exact D x D statistics only): no --method, --rank, --passes,
// --tolerance, rather than options listed in --help and refused whatever their value.
void add_method_options(CLI::App* s, run_options& r, bool sketches) {
    if (sketches) add_sketch_options(s, r);
    add_common_method_options(s, r);
}

void add_run_options(CLI::App* s, run_options& r, bool default_centered, const char* centering_targets,
                     bool sketches = true) {
    auto* c = s->add_option("--center", r.center,
                            std::string("Centering: 'both' (bare --center) the covariance") + centering_targets +
                                "; 'inputs' the inputs only, targets raw (the authors' published code); 'none' "
                                "the uncentered second moment XXᵀ. Default: " +
                                (default_centered ? "both" : "none (inputs with --measure published)"))
                  ->expected(0, 1)->default_str("both")->check(CLI::IsMember({"inputs", "both", "none"}))
                  // default_str is the bare option's value, not the default: say so in the help's first column.
                  ->option_text("[TEXT:{inputs,both,none}] (bare: both)");
    auto* nc = s->add_flag("--no-center", r.no_center,
                           std::string("Same as --center none") +
                               (default_centered ? "" : " (the default, except with --measure published: inputs)"));
    c->excludes(nc);
    add_method_options(s, r, sketches);
    auto* ck = s->add_option("--checkpoint", r.checkpoint, "Write the whole state to FILE (atomically) at the end, "
                                                           "every --checkpoint-every samples and on SIGINT/SIGTERM");
    s->add_option("--checkpoint-every", r.checkpoint_every, "Samples between checkpoints (0 = only at the end)")
        ->needs(ck)->check(non_negative);
    s->add_flag("--resume", r.resume, "Continue from --checkpoint FILE if it exists (refuses a different input "
                                      "or configuration)")->needs(ck);
    auto* from = s->add_option("--from", r.from, "Analyse the state in a checkpoint (e.g. the output of merge) "
                                                 "instead of reading data");
    from->excludes(ck);
    s->add_flag("--quiet,-q", r.quiet, "No progress line or notes on stderr");
    s->add_flag("--json", r.json, "Print one JSON document on stdout");
    // Hidden (no group): tests slow a run down to interrupt it mid-way.
    s->add_option("--test-batch-delay-ms", r.test_batch_delay_ms)->group("")->check(CLI::Range(0, 60000));
}

// --verify / --no-verify (align, tradeoff, denoise on sketch routes; sketch_route.cpp).
void add_verify_options(CLI::App* s, run_options& r) {
    auto* v = s->add_flag("--verify", r.verify, verify_help);
    s->add_flag("--no-verify", r.no_verify, "Skip the verification pass of a sketch route (see --verify)")->excludes(v);
}

// --image-shape H,W,C and --layout hwc|chw (project, denoise).
void add_image_options(CLI::App* s, std::string& shape, std::string& layout, const char* shape_help) {
    s->add_option("--image-shape", shape, shape_help)->required();
    s->add_option("--layout", layout, "Order of the values in a row")->check(CLI::IsMember({"hwc", "chw"}))
        ->capture_default_str();
}

const char* measure_help = "paper: Eq. 7; rank: normalised to reach 1; fit: share of |Y|² a linear probe explains; "
                           "published: the authors' code, 100·sqrt(rank) on a 0-100 scale (inputs centered, targets raw)";

// The authors' preprocessing (MATH.md §8): jitter, then global standardisation.
void add_preprocess_options(CLI::App* s, run_options& r) {
    const char* g = "PREPROCESSING (the authors' published pipeline)";
    s->add_option("--standardize", r.standardize,
                  "global: divide every value by the standard deviation of all centered values (exact, applied to "
                  "the finished statistics; alignment curves and masks are invariant to it)")
        ->check(CLI::IsMember({"none", "global"}))->capture_default_str()->group(g);
    s->add_option("--jitter", r.jitter,
                  "Add S x N(0,1) to every value (after --scale), drawn per row from (--seed, row): resumed, merged "
                  "and MPI runs add the same numbers. The authors add 0.001 x std(X)")
        ->check(CLI::NonNegativeNumber)->group(g);
}

void add_align(CLI::App& app, command_line& c) {
    c.align = app.add_subcommand("align", "Alignment curve of the top-k principal subspace with the labels (paper's Eq. 7); "
                                          "uncentered by default");
    align_options& o = c.align_opts;
    add_data_options(c.align, o.data);
    add_run_options(c.align, o.run, false, " (the one-hot targets are centered too)");
    c.align->add_option("--measure", o.measure, measure_help)->check(CLI::IsMember({"paper", "rank", "fit", "published"}))
        ->capture_default_str();
    c.align->add_option("--out", o.run.out, "Directory for CSV files and PNG charts");
    add_preprocess_options(c.align, o.run);
    add_verify_options(c.align, o.run);
}

void add_spectrum(CLI::App& app, command_line& c) {
    c.spectrum = app.add_subcommand("spectrum", "Eigenvalues and explained fractions of the (centered by default) "
                                                "second-moment matrix; reads no labels");
    add_data_options(c.spectrum, c.spectrum_opts.data);
    add_run_options(c.spectrum, c.spectrum_opts.run, true, "");
    c.spectrum->add_option("--out", c.spectrum_opts.run.out, "Directory for CSV files and PNG charts");
    add_verify_options(c.spectrum, c.spectrum_opts.run);
}

void add_project(CLI::App& app, command_line& c) {
    c.project = app.add_subcommand("project", "PNG grid of images and their projections on the top subspace "
                                              "(explaining --variance of the total) and its complement (paper's Fig. 9)");
    project_options& o = c.project_opts;
    add_data_options(c.project, o.data, false);
    add_run_options(c.project, o.run, true, "");
    c.project->add_option("--keep", o.keep, "Projection rows to draw under the originals")
        ->check(CLI::IsMember({"top", "bottom", "both"}))->capture_default_str();
    c.project->add_option("--variance", o.variance, "Fraction F of the total the top subspace explains")
        ->capture_default_str();
    add_image_options(c.project, o.image_shape, o.layout, "H,W,C (C = 1 gray or 3 RGB)");
    c.project->add_option("--out", o.run.out, "Output PNG file (written atomically)")->required();
    c.project->add_option("--count", o.count, "Images (columns) in the grid (at most the rows read)")
        ->capture_default_str()->check(non_negative);
    c.project->add_option("--zoom", o.zoom, "Pixel magnification")->capture_default_str()->check(CLI::Range(1, 16));
    add_verify_options(c.project, o.run);
}

void add_tradeoff(CLI::App& app, command_line& c) {
    c.tradeoff = app.add_subcommand("tradeoff", "Supervised and reconstruction losses at the optimum of the "
                                                "Theorem 1 trade-off, for each lambda; uncentered by default");
    tradeoff_cli_options& o = c.tradeoff_opts;
    add_data_options(c.tradeoff, o.data);
    add_run_options(c.tradeoff, o.run, false, " (the one-hot targets are centered too)");
    c.tradeoff->add_option("--lambda", o.lambdas, "Comma-separated lambdas L1,L2,... (>= 0)")->required();
    c.tradeoff->add_option("--k", o.k, "Latent dimension K (1 <= K <= D)")->required()->check(non_negative);
    c.tradeoff->add_option("--out", o.run.out, "Directory for the CSV file and PNG chart");
    c.tradeoff->add_option("--refine", o.run.refine,
                           "Sketch routes: the most passes after the first verification pass, each one block step of "
                           "preconditioned CG towards Sxx⁻¹ Sxy (the λ = 0 optimum; MATH.md §7), stopping early once "
                           "the preconditioned residual estimates the λ = 0 loss within 1e-4 of the optimum (an "
                           "estimate: it can stop early where CG stagnates; under mpirun judged once, on the ranks' "
                           "merged pass); 0 runs the first pass only")
        ->check(CLI::Range(0, 50))->default_str(std::to_string(default_tradeoff_refine));
    add_preprocess_options(c.tradeoff, o.run);
    add_verify_options(c.tradeoff, o.run);
}

void add_denoise(CLI::App& app, command_line& c) {
    c.denoise = app.add_subcommand("denoise", "Alignment of the optimal denoising representation (Theorem 3) against "
                                              "the clean curve, and the label-free noise impact; uncentered by default");
    denoise_cli_options& o = c.denoise_opts;
    add_data_options(c.denoise, o.data, false);
    add_run_options(c.denoise, o.run, false, " (the one-hot targets are centered too)");
    c.denoise->add_option("--measure", o.measure, "Alignment measure (as for align)")
        ->check(CLI::IsMember({"paper", "rank", "fit", "published"}))->capture_default_str();
    add_image_options(c.denoise, o.image_shape, o.layout, "H,W,C of the images (C = channels)");
    c.denoise->add_option("--noise", o.noises,
                          "Noise model, repeatable: gaussian:sigma=S | dropout:ratio=P | "
                          "mask:patch=PHxPW,ratio=P[,scheme=bernoulli|fixed]; any of them [,draws=S[,seed=N]]: "
                          "Monte Carlo with S >= 2 corruptions per sample (as --monte-carlo, for that noise). Exact route: "
                          "3 D x D float64 for any number of noises (the --memory check), with dsyevd, while the "
                          "matrices not in use wait in unlinked files in $TMPDIR (one D x D per non-Gaussian noise, "
                          "checked before reading); a Monte-Carlo noise 4 R more (its replicate sums)")->required();
    c.denoise->add_option("--monte-carlo", o.monte_carlo,
                          "Estimate the noise expectations with S >= 2 corruptions per sample, drawn in the same "
                          "pass as the clean statistics (checkpointed with them), instead of the closed forms; "
                          "uncentered (the default). Sketch routes: sketches of the corrupted samples, and the "
                          "verification pass draws the same corruptions again")
        ->check(non_negative);
    c.denoise->add_option("--refine", o.run.refine,
                          "Sketch routes with a masking noise: at most N passes after the verification pass that "
                          "refine each masking noise's subspace and the clean top 64 (MATH.md §7; each is one more read of the data but "
                          "computes only the 64 new directions per masking noise and 64 for the clean top; they stop early once the estimate, "
                          "from the last two changes of the relative differences and impacts (K <= 64; the impacts' "
                          "weighted by 1/5, their target being 5x looser), of how far they still are from where more passes would take them is below 5e-4; 0 keeps the "
                          "first pass's subspace; a resume must give the same N); refused where it has nothing to "
                          "refine (--method exact, --no-verify, --from, no masking noise in closed form). The carried "
                          "directions' products with Sxx wait on disk meanwhile, in unlinked files in $TMPDIR (default /tmp; up to 3 D "
                          "doubles per verified direction, and the finished sketch: 2 rank + 20 more; refused before "
                          "reading when it has less room or no file can be made there)")
        ->check(CLI::Range(0, 20))->default_str(std::to_string(default_refine));
    c.denoise->add_option("--k-list", o.k_list, "Comma-separated k at which the text table reports (1 <= k <= D)");
    c.denoise->add_option("--out", o.run.out, "Directory for CSV files and the Figure 7 chart");
    add_preprocess_options(c.denoise, o.run);
    add_verify_options(c.denoise, o.run);
}

void add_figures(CLI::App& app, command_line& c) {
    c.figures = app.add_subcommand("figures", "The paper's figures in one pass over the data, with the authors' numbers: "
                                              "Figure 2, Figure 7's grid, the lambda trade-off, the noise impact, "
                                              "Figure 9; CSV, PNG and SVG files and one report.html in --out DIR");
    figures_cli_options& o = c.figures_opts;
    add_data_options(c.figures, o.data, false);
    add_run_options(c.figures, o.run, false, " (the one-hot targets are centered too)", false);
    o.run.standardize = "global";  // the authors' pipeline (captured as the default by --help)
    add_preprocess_options(c.figures, o.run);
    c.figures->add_option("--out", o.run.out, "Directory for the CSV, PNG and SVG files and report.html")->required();
    c.figures->add_option("--measure", o.measure, measure_help)
        ->check(CLI::IsMember({"paper", "rank", "fit", "published"}))->capture_default_str();
    c.figures->add_option("--image-shape", o.image_shape, "H,W,C of the images (default 28,28,1 for the default data)");
    c.figures->add_option("--layout", o.layout, "Order of the values in a row")->check(CLI::IsMember({"hwc", "chw"}))
        ->capture_default_str();
    c.figures->add_option("--patches", o.patches, "Figure 7: square patch sizes P (P x P), comma-separated")
        ->capture_default_str();
    c.figures->add_option("--ratios", o.ratios, "Figure 7: drop ratios in [0, 1), comma-separated (default: the "
                                                "authors' linspace(0, 0.99, 10))");
    c.figures->add_option("--scheme", o.scheme, "Figure 7: mask scheme")->check(CLI::IsMember({"bernoulli", "fixed"}))
        ->capture_default_str();
    c.figures->add_option("--lambda", o.lambdas, "Trade-off: comma-separated lambdas >= 0")->capture_default_str();
    c.figures->add_option("--tradeoff-k", o.tradeoff_k, "Trade-off: latent dimension K (default: the classes C)")
        ->check(non_negative);
    c.figures->add_option("--noise", o.noises, "Noise-impact diagnostic: more noises (closed forms) beside the grid's");
    c.figures->add_option("--overlay", o.overlays, "Figure 2: also draw NAME=FILE, the fig2_alignment.csv of another "
                                                   "figures run (another data set), as the paper overlays them");
    c.figures->add_option("--dataset", o.datasets, "Figure 2: also stream NAME=IMAGES[,labels=FILE][,format=F] "
                                                   "(repeatable; one more pass each, the other DATA and run options "
                                                   "as for the main data, checkpoint FILE.NAME) and overlay its curve");
    c.figures->add_option("--variance", o.variance, "Figure 9: fraction of the variance the top subspace explains")
        ->capture_default_str();
    c.figures->add_option("--count", o.count, "Figure 9: images shown")->capture_default_str()->check(CLI::Range(1, 64));
}

}  // namespace

void register_commands(CLI::App& app, command_line& c) {
    add_align(app, c);
    add_spectrum(app, c);
    add_project(app, c);
    add_tradeoff(app, c);
    add_denoise(app, c);
    add_figures(app, c);
    c.merge = app.add_subcommand("merge", "Merge checkpoints of runs over disjoint data into one");
    c.merge->add_option("checkpoints", c.merge_opts.inputs, "Checkpoints to merge")->required();
    c.merge->add_option("-o,--output", c.merge_opts.output, "Merged checkpoint (written atomically; an existing file is replaced, with a note on stderr)")->required();
    c.merge->footer("");
    c.info = app.add_subcommand("info", "Print a checkpoint's header and summary");
    c.info->add_option("checkpoint", c.info_opts.file, "Checkpoint file")->required();
    c.info->add_flag("--json", c.info_opts.json, "Print one JSON document");
    c.info->footer("");
}

}  // namespace recalign::cli

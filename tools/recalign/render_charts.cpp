// Charts drawn by gnuplot from the CSV files, and the CSV text itself.
#include <sys/wait.h>

#include <cstdio>
#include <cstdlib>
#include <sstream>

#include "paths.hpp"
#include "render.hpp"

namespace recalign::cli {

std::string csv_text(const std::vector<std::string>& names, const std::vector<std::vector<double>>& columns,
                     const std::string& index_name) {
    std::ostringstream os;
    if (!index_name.empty()) os << index_name;
    for (std::size_t j = 0; j < names.size(); ++j) os << (j || !index_name.empty() ? "," : "") << names[j];
    os << '\n';
    std::size_t rows = 0;
    for (const auto& c : columns) rows = std::max(rows, c.size());
    char buf[64];
    for (std::size_t i = 0; i < rows; ++i) {
        if (!index_name.empty()) os << (i + 1);
        for (std::size_t j = 0; j < columns.size(); ++j) {
            buf[0] = '\0';
            if (i < columns[j].size()) std::snprintf(buf, sizeof buf, "%.17g", columns[j][i]);
            os << (j || !index_name.empty() ? "," : "") << buf;
        }
        os << '\n';
    }
    return os.str();
}

namespace {

int run_quiet(const std::string& cmd) {
    const int rc = std::system((cmd + " >/dev/null 2>&1").c_str());
    return rc == -1 ? -1 : (WIFEXITED(rc) ? WEXITSTATUS(rc) : -1);
}
std::string shell_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
    return out + "'";
}
std::string gp_quote(const std::string& s) {
    std::string out = "'";
    for (char c : s) out += c == '\'' ? std::string("''") : std::string(1, c);
    return out + "'";
}

// 0: no gnuplot, 1: pngcairo, 2: png (asked once per process).
int gnuplot_terminal(bool quiet) {
    static int terminal = -1;
    if (terminal >= 0) return terminal;
    if (run_quiet("command -v gnuplot") != 0) terminal = 0;
    else if (run_quiet("gnuplot -e 'set terminal pngcairo'") == 0) terminal = 1;
    else terminal = 2;
    if (terminal == 0 && !quiet) std::fprintf(stderr, "recalign: gnuplot not found; skipping the PNG charts (CSV files written)\n");
    return terminal;
}

// terminal 3: svg (the vector version of a chart).
std::string gnuplot_script(const chart& c, int terminal, const std::string& output) {
    std::ostringstream gp;
    gp << "set terminal "
       << (terminal == 3 ? "svg size 900,600 font 'sans,14'" : terminal == 1 ? "pngcairo size 900,600" : "png size 900,600")
       << "\n"
       << "set output " << gp_quote(output) << "\n"
       << "set datafile separator ','\n"
       << "set key autotitle columnhead\n"
       << "set title " << gp_quote(c.title) << " noenhanced\n"
       << "set xlabel " << gp_quote(c.xlabel) << " noenhanced\n"
       << "set ylabel " << gp_quote(c.ylabel) << " noenhanced\n"
       << "set grid\n";
    if (c.log_x) gp << "set logscale x\n";
    if (c.log_y) gp << "set logscale y\n";
    for (const std::string& e : c.extra) gp << e << "\n";
    gp << "plot ";
    const std::size_t n = c.series.empty() ? 1 : c.series.size();
    for (std::size_t i = 0; i < n; ++i) {
        const bool own = i < c.series_csv.size();
        gp << (i ? ", " : "") << gp_quote(own ? c.series_csv[i] : c.csv) << " using " << c.x_column << ":"
           << (own ? c.first_column : c.first_column + i)
           << (c.points ? " with linespoints pt 7 lw 2" : " with lines lw 2");
        if (i < c.colors.size()) gp << " lc rgb " << gp_quote(c.colors[i]);
        if (!c.series.empty()) gp << " title " << gp_quote(c.series[i]) << " noenhanced";
    }
    gp << "\n";
    return gp.str();
}

}  // namespace

namespace {
// Draws `c` with `terminal` into a temporary file renamed over `output`.
bool draw_into(const chart& c, int terminal, const std::string& output, bool quiet, const std::string& script) {
    const std::string tmp = output + ".tmp";
    write_output_file(tmp + ".gp", gnuplot_script(c, terminal, tmp));
    const bool ok = run_quiet("gnuplot " + shell_quote(tmp + ".gp")) == 0 && std::rename(tmp.c_str(), output.c_str()) == 0;
    std::remove((tmp + ".gp").c_str());
    if (!ok) {
        std::remove(tmp.c_str());
        if (!quiet) std::fprintf(stderr, "recalign: gnuplot failed on %s; chart %s skipped\n", script.c_str(), output.c_str());
    }
    return ok;
}
}  // namespace

bool draw_chart(const chart& c, bool quiet) {
    const int terminal = gnuplot_terminal(quiet);
    if (terminal == 0) return false;
    if (!c.svg.empty() && !draw_into(c, 3, c.svg, quiet, c.svg)) return false;
    const std::string base = c.png.substr(0, c.png.size() - (c.png.size() > 4 ? 4 : 0));
    const std::string script = base + ".gp";
    // The script names the final PNG (a user re-runs it as is); this run draws into a
    // temporary file renamed over it, so an existing chart is never left half-written.
    write_output_file(script, gnuplot_script(c, terminal, c.png));
    const std::string tmp = c.png + ".tmp";
    write_output_file(tmp + ".gp", gnuplot_script(c, terminal, tmp));
    const bool ok = run_quiet("gnuplot " + shell_quote(tmp + ".gp")) == 0 && std::rename(tmp.c_str(), c.png.c_str()) == 0;
    std::remove((tmp + ".gp").c_str());
    if (!ok) {
        std::remove(tmp.c_str());
        if (!quiet) std::fprintf(stderr, "recalign: gnuplot failed on %s; chart %s skipped\n", script.c_str(), c.png.c_str());
    }
    return ok;
}

}  // namespace recalign::cli

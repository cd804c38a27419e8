// Charts drawn by gnuplot from the CSV files, and the CSV text itself.
#include <sys/wait.h>
#include <unistd.h>

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

// terminal 3: svg (the vector version of a chart). An empty `output` sets none: gnuplot then
// writes the chart on its standard output.
std::string gnuplot_script(const chart& c, int terminal, const std::string& output) {
    std::ostringstream gp;
    gp << "set terminal "
       << (terminal == 3 ? "svg size 900,600 font 'sans,14'" : terminal == 1 ? "pngcairo size 900,600" : "png size 900,600")
       << "\n";
    if (!output.empty()) gp << "set output " << gp_quote(output) << "\n";
    gp << "set datafile separator ','\n"
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

// Runs gnuplot on `script` (which sets no output) and returns the chart's bytes, read from
// gnuplot's standard output; empty when gnuplot failed. The script lies in a private temporary
// file (TMPDIR, else /tmp), never beside the outputs, unlinked before gnuplot starts: gnuplot
// reads it through the descriptor it inherits (/dev/fd/N), so a run killed meanwhile (SIGKILL)
// leaves no file behind.
std::string gnuplot_output(const std::string& script) {
    const char* dir = std::getenv("TMPDIR");
    std::string name = std::string(dir && *dir ? dir : "/tmp") + "/recalign-chart-XXXXXX.gp";
    const int fd = ::mkstemps(name.data(), 3);
    if (fd < 0) return {};
    const bool written = ::write(fd, script.data(), script.size()) == static_cast<ssize_t>(script.size());
    ::unlink(name.c_str());
    std::string bytes;
    if (written) {
        if (FILE* p = ::popen(("gnuplot /dev/fd/" + std::to_string(fd) + " 2>/dev/null").c_str(), "r")) {
            char buf[1 << 16];
            for (std::size_t got; (got = std::fread(buf, 1, sizeof buf, p)) > 0;) bytes.append(buf, got);
            const int rc = ::pclose(p);
            if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) != 0) bytes.clear();
        }
    }
    ::close(fd);
    return bytes;
}

// Draws `c` with `terminal` and writes it to `output` as every other output file is written
// (a unique temporary file, fsync, rename): an existing chart is never left half-written.
// A gnuplot failure skips the chart with a line on stderr; a failure to write it is an error.
bool draw_into(const chart& c, int terminal, const std::string& output, bool quiet, const std::string& script) {
    const std::string bytes = gnuplot_output(gnuplot_script(c, terminal, ""));
    if (bytes.empty()) {
        if (!quiet) std::fprintf(stderr, "recalign: gnuplot failed on %s; chart %s skipped\n", script.c_str(), output.c_str());
        return false;
    }
    write_output_file(output, bytes);
    return true;
}

}  // namespace

bool draw_chart(const chart& c, bool quiet) {
    const int terminal = gnuplot_terminal(quiet);
    if (terminal == 0) return false;
    if (!c.svg.empty() && !draw_into(c, 3, c.svg, quiet, c.svg)) return false;
    const std::string base = c.png.substr(0, c.png.size() - (c.png.size() > 4 ? 4 : 0));
    const std::string script = base + ".gp";
    // The script names the final PNG: a user re-runs it as is.
    write_output_file(script, gnuplot_script(c, terminal, c.png));
    return draw_into(c, terminal, c.png, quiet, script);
}

}  // namespace recalign::cli

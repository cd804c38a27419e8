#include "output.hpp"

#include <png.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace recalign::cli {

void write_csv(const std::string& path, const std::vector<std::string>& names,
               const std::vector<std::vector<double>>& columns, const std::string& index_name) {
    std::ofstream os(path);
    if (!os) throw user_error("cannot write " + path + ": " + std::strerror(errno));
    if (!index_name.empty()) os << index_name;
    for (std::size_t j = 0; j < names.size(); ++j) os << (j || !index_name.empty() ? "," : "") << names[j];
    os << '\n';
    const std::size_t rows = columns.empty() ? 0 : columns[0].size();
    char buf[64];
    for (std::size_t i = 0; i < rows; ++i) {
        if (!index_name.empty()) os << (i + 1);
        for (std::size_t j = 0; j < columns.size(); ++j) {
            std::snprintf(buf, sizeof buf, "%.17g", columns[j][i]);
            os << (j || !index_name.empty() ? "," : "") << buf;
        }
        os << '\n';
    }
    if (!os) throw std::runtime_error("writing " + path + " failed");
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
}  // namespace

bool draw_chart(const chart& c, bool quiet) {
    static int terminal = -1;  // 0: none (no gnuplot), 1: pngcairo, 2: png
    if (terminal < 0) {
        if (run_quiet("command -v gnuplot") != 0) terminal = 0;
        else if (run_quiet("gnuplot -e 'set terminal pngcairo'") == 0) terminal = 1;
        else terminal = 2;
        if (terminal == 0 && !quiet) std::fprintf(stderr, "recalign: gnuplot not found; skipping the PNG charts (CSV files written)\n");
    }
    if (terminal == 0) return false;
    const std::string script = c.png.substr(0, c.png.size() - (c.png.size() > 4 ? 4 : 0)) + ".gp";
    {
        std::ofstream gp(script);
        if (!gp) throw user_error("cannot write " + script);
        gp << "set terminal " << (terminal == 1 ? "pngcairo size 900,600" : "png size 900,600") << "\n"
           << "set output " << gp_quote(c.png) << "\n"
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
            gp << (i ? ", " : "") << gp_quote(c.csv) << " using 1:" << (c.first_column + i) << " with lines lw 2";
            if (!c.series.empty()) gp << " title " << gp_quote(c.series[i]) << " noenhanced";
        }
        gp << "\n";
    }
    if (run_quiet("gnuplot " + shell_quote(script)) != 0) {
        if (!quiet) std::fprintf(stderr, "recalign: gnuplot failed on %s; chart %s skipped\n", script.c_str(), c.png.c_str());
        return false;
    }
    return true;
}

void write_png(const std::string& path, const image_grid& g) {
    if (g.channels != 1 && g.channels != 3) throw std::invalid_argument("PNG grids need 1 or 3 channels");
    const std::size_t cw = g.width * g.zoom, ch = g.height * g.zoom;
    const std::size_t W = g.cols * cw + (g.cols + 1) * g.gap, H = g.rows * ch + (g.rows + 1) * g.gap;
    std::vector<unsigned char> img(W * H * g.channels, 255);
    for (std::size_t r = 0; r < g.rows; ++r)
        for (std::size_t c = 0; c < g.cols; ++c) {
            const auto& cell = g.cells[r * g.cols + c];
            const std::size_t x0 = g.gap + c * (cw + g.gap), y0 = g.gap + r * (ch + g.gap);
            for (std::size_t y = 0; y < ch; ++y)
                for (std::size_t x = 0; x < cw; ++x)
                    for (std::size_t k = 0; k < g.channels; ++k)
                        img[((y0 + y) * W + x0 + x) * g.channels + k] =
                            cell[((y / g.zoom) * g.width + x / g.zoom) * g.channels + k];
        }
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) throw user_error("cannot write " + path + ": " + std::strerror(errno));
    png_structp png = png_create_write_struct(PNG_LIBPNG_VER_STRING, nullptr, nullptr, nullptr);
    png_infop info = png ? png_create_info_struct(png) : nullptr;
    if (!png || !info || setjmp(png_jmpbuf(png))) {
        png_destroy_write_struct(&png, &info);
        std::fclose(f);
        throw std::runtime_error("libpng failed writing " + path);
    }
    png_init_io(png, f);
    png_set_IHDR(png, info, static_cast<png_uint_32>(W), static_cast<png_uint_32>(H), 8,
                 g.channels == 3 ? PNG_COLOR_TYPE_RGB : PNG_COLOR_TYPE_GRAY, PNG_INTERLACE_NONE,
                 PNG_COMPRESSION_TYPE_DEFAULT, PNG_FILTER_TYPE_DEFAULT);
    // Unfiltered rows: the grids are small, and the file stays trivially checkable.
    png_set_filter(png, 0, PNG_FILTER_NONE);
    png_write_info(png, info);
    for (std::size_t y = 0; y < H; ++y) png_write_row(png, &img[y * W * g.channels]);
    png_write_end(png, nullptr);
    png_destroy_write_struct(&png, &info);
    if (std::fclose(f) != 0) throw std::runtime_error("writing " + path + " failed");
}

progress::progress(bool enabled, std::uint64_t total, std::uint64_t start)
    : on_(enabled), total_(total), start_(start), t0_(std::chrono::steady_clock::now()), last_(t0_) {}

void progress::update(std::uint64_t done) {
    if (!on_) return;
    const auto now = std::chrono::steady_clock::now();
    if (now - last_ < std::chrono::milliseconds(250) && done < total_) return;
    last_ = now;
    const double secs = std::chrono::duration<double>(now - t0_).count();
    const double rate = secs > 0 ? static_cast<double>(done - start_) / secs : 0.0;
    char eta[32] = "?";
    if (rate > 0) {
        const double left = static_cast<double>(total_ - done) / rate;
        if (left < 120) std::snprintf(eta, sizeof eta, "%.0fs", left);
        else if (left < 7200) std::snprintf(eta, sizeof eta, "%.0fm%02.0fs", std::floor(left / 60), std::fmod(left, 60));
        else std::snprintf(eta, sizeof eta, "%.1fh", left / 3600);
    }
    std::fprintf(stderr, "\r%llu/%llu samples  %.0f samples/s  ETA %s   ", (unsigned long long)done,
                 (unsigned long long)total_, rate, eta);
    std::fflush(stderr);
    drawn_ = true;
}

void progress::finish() {
    if (on_ && drawn_) std::fprintf(stderr, "\r\033[K");
    drawn_ = false;
}

void make_dirs(const std::string& dir) {
    std::string cur;
    for (std::size_t i = 0; i <= dir.size(); ++i) {
        if (i == dir.size() || dir[i] == '/') {
            if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST)
                throw user_error("cannot create directory " + cur + ": " + std::strerror(errno));
        }
        if (i < dir.size()) cur += dir[i];
    }
    struct stat st {};
    if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) throw user_error(dir + " is not a directory");
}

}  // namespace recalign::cli

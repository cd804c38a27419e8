// An LD_PRELOAD module that logs recalign's own BLAS and LAPACK calls: each cblas_dgemm, dsyrk,
// dtrsm and LAPACKE_dpotrf, dsyevd with its start (seconds since the module loaded), its duration,
// its shape and the recalign functions on its call chain (a perf profile cannot tell which
// products take OpenBLAS's time: its frames do not unwind). tools/bench/blas_calls.py sums the log
// by shape over the windows between two RECALIGN_MEMORY_TRACE marks (docs/benchmarks-log.md,
// "The forty-eighth session": where a 224 restart's time goes).
//
//   BLAS_CALLS_LOG=calls.log LD_PRELOAD=build/tools/bench/libblas_calls.so RECALIGN_MEMORY_TRACE=1
//       build/tools/recalign/recalign denoise ... 2> trace.err      (one command line)
//
// OpenBLAS's own calls (its LAPACK's dgemm_, say) are not seen: they do not go through these
// symbols. Each call costs a backtrace and a line: fine for products of milliseconds, not for a
// profile of many tiny calls.
#include <cblas.h>
#include <dlfcn.h>
#include <execinfo.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>

namespace {
double now() {
    timespec ts{};
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

struct log_file {
    std::FILE* out = nullptr;
    double t0 = now();
    log_file() {
        const char* path = std::getenv("BLAS_CALLS_LOG");
        if (!path) path = "blas_calls.log";
        out = std::fopen(path, "w");
        if (!out)
            std::fprintf(stderr, "blas_calls: cannot write %s: %s; no call is logged\n", path, std::strerror(errno));
    }
    ~log_file() {
        if (out) std::fclose(out);
    }
};
log_file& logged() {
    static log_file f;
    return f;
}
// Times count from the module's load, as the trace's marks count from the process's start.
__attribute__((constructor)) void opened() { logged(); }

// The first four frames in a recalign library or program above the call: "symbol+offset;..."
std::string callers() {
    void* frames[16];
    const int n = backtrace(frames, 16);
    std::string out;
    int kept = 0;
    for (int i = 2; i < n && kept < 4; ++i) {
        Dl_info d{};
        if (!dladdr(frames[i], &d) || !d.dli_fname || !std::strstr(d.dli_fname, "recalign")) continue;
        const char* base = static_cast<const char*>(d.dli_saddr ? d.dli_saddr : d.dli_fbase);
        char item[64];
        std::snprintf(item, sizeof item, "+%lx;",
                      static_cast<unsigned long>(static_cast<const char*>(frames[i]) - base));
        out += (d.dli_sname ? d.dli_sname : "?") + std::string(item);
        ++kept;
    }
    return out.empty() ? "-" : out;
}

void record(double start, const char* what, const std::string& shape) {
    log_file& f = logged();
    if (!f.out) return;
    const double took = now() - start;
    std::fprintf(f.out, "%.4f %.6f %s %s %s\n", start - f.t0, took, what, shape.c_str(), callers().c_str());
}

template <class F>
F next(const char* name) {
    return reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
}

std::string dims(long a, long b, long c = -1) {
    return std::to_string(a) + " " + std::to_string(b) + (c >= 0 ? " " + std::to_string(c) : "");
}
}  // namespace

extern "C" {

void cblas_dgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const double alpha, const double* a,
                 const blasint lda, const double* b, const blasint ldb, const double beta, double* c,
                 const blasint ldc) {
    using fn = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, double, const double*,
                        blasint, const double*, blasint, double, double*, blasint);
    static const fn real = next<fn>("cblas_dgemm");
    const double t = now();
    real(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    record(t,
           ta == CblasNoTrans ? (tb == CblasNoTrans ? "dgemm_nn" : "dgemm_nt")
                              : (tb == CblasNoTrans ? "dgemm_tn" : "dgemm_tt"),
           dims(m, n, k));
}

void cblas_dsyrk(const enum CBLAS_ORDER o, const enum CBLAS_UPLO u, const enum CBLAS_TRANSPOSE tr, const blasint n,
                 const blasint k, const double alpha, const double* a, const blasint lda, const double beta, double* c,
                 const blasint ldc) {
    using fn = void (*)(CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint, blasint, double, const double*, blasint,
                        double, double*, blasint);
    static const fn real = next<fn>("cblas_dsyrk");
    const double t = now();
    real(o, u, tr, n, k, alpha, a, lda, beta, c, ldc);
    record(t, "dsyrk", dims(n, k));
}

void cblas_dtrsm(const enum CBLAS_ORDER o, const enum CBLAS_SIDE s, const enum CBLAS_UPLO u,
                 const enum CBLAS_TRANSPOSE tr, const enum CBLAS_DIAG dg, const blasint m, const blasint n,
                 const double alpha, const double* a, const blasint lda, double* b, const blasint ldb) {
    using fn = void (*)(CBLAS_ORDER, CBLAS_SIDE, CBLAS_UPLO, CBLAS_TRANSPOSE, CBLAS_DIAG, blasint, blasint, double,
                        const double*, blasint, double*, blasint);
    static const fn real = next<fn>("cblas_dtrsm");
    const double t = now();
    real(o, s, u, tr, dg, m, n, alpha, a, lda, b, ldb);
    record(t, "dtrsm", dims(m, n));
}

int LAPACKE_dpotrf(int layout, char uplo, int n, double* a, int lda) {
    using fn = int (*)(int, char, int, double*, int);
    static const fn real = next<fn>("LAPACKE_dpotrf");
    const double t = now();
    const int info = real(layout, uplo, n, a, lda);
    record(t, "dpotrf", dims(n, n));
    return info;
}

int LAPACKE_dsyevd(int layout, char jobz, char uplo, int n, double* a, int lda, double* w) {
    using fn = int (*)(int, char, char, int, double*, int, double*);
    static const fn real = next<fn>("LAPACKE_dsyevd");
    const double t = now();
    const int info = real(layout, jobz, uplo, n, a, lda, w);
    record(t, "dsyevd", dims(n, n));
    return info;
}
}

// An LD_PRELOAD module that logs recalign's own BLAS and LAPACK calls: each cblas_dgemm, sgemm,
// dsyrk, ssyrk, dtrsm and LAPACKE_dpotrf, dsyevd and the eigen-step's parts (LAPACKE_ssytrd,
// sstedc, sormtr and their d twins: blas::syevd_top_rows) with its start (seconds since the
// module loaded), its duration, its shape and the recalign functions on its call chain (a perf
// profile cannot tell which products take OpenBLAS's time: its frames do not unwind).
// tools/bench/blas_calls.py sums the log by shape over the windows between two
// RECALIGN_MEMORY_TRACE marks (docs/benchmarks-log.md, "The forty-eighth session": where a 224
// restart's time goes), or over the whole run ("The fiftieth session": where FD's time goes).
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

// The products, in either precision: `prefix` is "dgemm"/"sgemm", "dsyrk"/"ssyrk".
template <class T>
void gemm(const char* prefix, CBLAS_ORDER o, CBLAS_TRANSPOSE ta, CBLAS_TRANSPOSE tb, blasint m, blasint n, blasint k,
          T alpha, const T* a, blasint lda, const T* b, blasint ldb, T beta, T* c, blasint ldc) {
    using fn = void (*)(CBLAS_ORDER, CBLAS_TRANSPOSE, CBLAS_TRANSPOSE, blasint, blasint, blasint, T, const T*, blasint,
                        const T*, blasint, T, T*, blasint);
    static const fn real = next<fn>((std::string("cblas_") + prefix).c_str());
    const double t = now();
    real(o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    const std::string op = std::string(prefix) + (ta == CblasNoTrans ? "_n" : "_t") + (tb == CblasNoTrans ? "n" : "t");
    record(t, op.c_str(), dims(m, n, k));
}
template <class T>
void syrk(const char* prefix, CBLAS_ORDER o, CBLAS_UPLO u, CBLAS_TRANSPOSE tr, blasint n, blasint k, T alpha,
          const T* a, blasint lda, T beta, T* c, blasint ldc) {
    using fn =
        void (*)(CBLAS_ORDER, CBLAS_UPLO, CBLAS_TRANSPOSE, blasint, blasint, T, const T*, blasint, T, T*, blasint);
    static const fn real = next<fn>((std::string("cblas_") + prefix).c_str());
    const double t = now();
    real(o, u, tr, n, k, alpha, a, lda, beta, c, ldc);
    record(t, prefix, dims(n, k));
}

// The eigen-step of blas::syevd_top_rows (tridiagonal reduction, divide and conquer, the
// back-transformation of the top k vectors), in either precision.
template <class T>
int sytrd(const char* name, int layout, char uplo, int n, T* a, int lda, T* d, T* e, T* tau) {
    using fn = int (*)(int, char, int, T*, int, T*, T*, T*);
    static const fn real = next<fn>(name);
    const double t = now();
    const int info = real(layout, uplo, n, a, lda, d, e, tau);
    record(t, name + 8, dims(n, n));
    return info;
}
template <class T>
int stedc(const char* name, int layout, char compz, int n, T* d, T* e, T* z, int ldz) {
    using fn = int (*)(int, char, int, T*, T*, T*, int);
    static const fn real = next<fn>(name);
    const double t = now();
    const int info = real(layout, compz, n, d, e, z, ldz);
    record(t, name + 8, dims(n, n));
    return info;
}
template <class T>
int ormtr(const char* name, int layout, char side, char uplo, char trans, int m, int n, const T* a, int lda,
          const T* tau, T* c, int ldc) {
    using fn = int (*)(int, char, char, char, int, int, const T*, int, const T*, T*, int);
    static const fn real = next<fn>(name);
    const double t = now();
    const int info = real(layout, side, uplo, trans, m, n, a, lda, tau, c, ldc);
    record(t, name + 8, dims(m, n));
    return info;
}
}  // namespace

extern "C" {

void cblas_dgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const double alpha, const double* a,
                 const blasint lda, const double* b, const blasint ldb, const double beta, double* c,
                 const blasint ldc) {
    gemm("dgemm", o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}
void cblas_sgemm(const enum CBLAS_ORDER o, const enum CBLAS_TRANSPOSE ta, const enum CBLAS_TRANSPOSE tb,
                 const blasint m, const blasint n, const blasint k, const float alpha, const float* a,
                 const blasint lda, const float* b, const blasint ldb, const float beta, float* c,
                 const blasint ldc) {
    gemm("sgemm", o, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void cblas_dsyrk(const enum CBLAS_ORDER o, const enum CBLAS_UPLO u, const enum CBLAS_TRANSPOSE tr, const blasint n,
                 const blasint k, const double alpha, const double* a, const blasint lda, const double beta, double* c,
                 const blasint ldc) {
    syrk("dsyrk", o, u, tr, n, k, alpha, a, lda, beta, c, ldc);
}
void cblas_ssyrk(const enum CBLAS_ORDER o, const enum CBLAS_UPLO u, const enum CBLAS_TRANSPOSE tr, const blasint n,
                 const blasint k, const float alpha, const float* a, const blasint lda, const float beta, float* c,
                 const blasint ldc) {
    syrk("ssyrk", o, u, tr, n, k, alpha, a, lda, beta, c, ldc);
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

int LAPACKE_ssytrd(int l, char u, int n, float* a, int lda, float* d, float* e, float* tau) {
    return sytrd("LAPACKE_ssytrd", l, u, n, a, lda, d, e, tau);
}
int LAPACKE_dsytrd(int l, char u, int n, double* a, int lda, double* d, double* e, double* tau) {
    return sytrd("LAPACKE_dsytrd", l, u, n, a, lda, d, e, tau);
}
int LAPACKE_sstedc(int l, char c, int n, float* d, float* e, float* z, int ldz) {
    return stedc("LAPACKE_sstedc", l, c, n, d, e, z, ldz);
}
int LAPACKE_dstedc(int l, char c, int n, double* d, double* e, double* z, int ldz) {
    return stedc("LAPACKE_dstedc", l, c, n, d, e, z, ldz);
}
int LAPACKE_sormtr(int l, char s, char u, char t, int m, int n, const float* a, int lda, const float* tau, float* c,
                   int ldc) {
    return ormtr("LAPACKE_sormtr", l, s, u, t, m, n, a, lda, tau, c, ldc);
}
int LAPACKE_dormtr(int l, char s, char u, char t, int m, int n, const double* a, int lda, const double* tau,
                   double* c, int ldc) {
    return ormtr("LAPACKE_dormtr", l, s, u, t, m, n, a, lda, tau, c, ldc);
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

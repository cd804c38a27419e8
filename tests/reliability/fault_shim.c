/* LD_PRELOAD shim that injects I/O failures into the calls write_file_atomic makes
 * (lib/io/files.cpp), to prove what happens to a checkpoint when the disk fails.
 *
 * It interposes write, fsync, fdatasync, close and rename (dlsym(RTLD_NEXT) for the real
 * ones). Only calls on a *matching* path are counted, logged or failed: the path of an fd
 * comes from readlink(/proc/self/fd/N), the path of rename is its source. Everything else
 * passes straight through.
 *
 * Environment (read at the first call, and again by recalign_fault_shim_reset()):
 *   RECALIGN_FAULT_MATCH   path substring that selects the calls (required; unset = inert)
 *   RECALIGN_FAULT_EXACT   1: the path must equal RECALIGN_FAULT_MATCH instead
 *   RECALIGN_FAULT_OP      write | fsync | fdatasync | close | rename (unset: only log)
 *   RECALIGN_FAULT_NTH     fail the Nth matching call of OP (1-based; default 1)
 *   RECALIGN_FAULT_ERRNO   EIO | ENOSPC | EDQUOT | EROFS | a number (default EIO)
 *   RECALIGN_FAULT_SHORT   1 (write only): the Nth write writes half its bytes and returns
 *                          that count, the next matching write fails with the errno —
 *                          the way a filling disk behaves
 *   RECALIGN_FAULT_LOG     file to which every matching call appends one line
 *                          "<op> <path> ok|fail <errno-name>|short <done>/<asked>"
 *   RECALIGN_FAULT_PAUSE   1: stop the process (SIGSTOP) just before the first injected
 *                          failure, so that a test can copy the files as they are at that
 *                          moment and then send SIGCONT
 *
 * Exactly one call (or one short write and the call after it) fails: an implementation
 * that retried a failed fsync would see the retry succeed and go on to rename, which the
 * log then shows. A failed close still closes the descriptor (Linux semantics); a failed
 * fsync, write or rename does nothing.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef ssize_t (*write_fn)(int, const void*, size_t);
typedef int (*fd_fn)(int);
typedef int (*rename_fn)(const char*, const char*);

static write_fn real_write;
static fd_fn real_fsync, real_fdatasync, real_close;
static rename_fn real_rename;

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static int configured;
static char match[4096];
static int exact;
static char op[16];
static long nth = 1;
static int fail_errno = EIO;
static int short_write;
static int pause_first;
static int log_fd = -1;
static long calls;        /* matching calls of `op` seen so far */
static int pending_fail;  /* after a short write: the next matching write fails */

/* memcpy: ISO C has no conversion from the void* of dlsym to a function pointer. */
#define RESOLVE(var, name)                      \
    do {                                        \
        if (!var) {                             \
            void* p = dlsym(RTLD_NEXT, name);   \
            memcpy(&var, &p, sizeof var);       \
        }                                       \
    } while (0)

static void resolve(void) {
    RESOLVE(real_write, "write");
    RESOLVE(real_fsync, "fsync");
    RESOLVE(real_fdatasync, "fdatasync");
    RESOLVE(real_close, "close");
    RESOLVE(real_rename, "rename");
}

static int parse_errno(const char* s) {
    if (!s || !*s) return EIO;
    if (!strcmp(s, "EIO")) return EIO;
    if (!strcmp(s, "ENOSPC")) return ENOSPC;
    if (!strcmp(s, "EDQUOT")) return EDQUOT;
    if (!strcmp(s, "EROFS")) return EROFS;
    return atoi(s);
}

/* Called with `lock` held. */
static void configure(void) {
    resolve();
    const char* m = getenv("RECALIGN_FAULT_MATCH");
    snprintf(match, sizeof match, "%s", m ? m : "");
    const char* e = getenv("RECALIGN_FAULT_EXACT");
    exact = e && !strcmp(e, "1");
    const char* o = getenv("RECALIGN_FAULT_OP");
    snprintf(op, sizeof op, "%s", o ? o : "");
    const char* n = getenv("RECALIGN_FAULT_NTH");
    nth = n ? atol(n) : 1;
    fail_errno = parse_errno(getenv("RECALIGN_FAULT_ERRNO"));
    const char* s = getenv("RECALIGN_FAULT_SHORT");
    short_write = s && !strcmp(s, "1");
    const char* ps = getenv("RECALIGN_FAULT_PAUSE");
    pause_first = ps && !strcmp(ps, "1");
    if (log_fd >= 0) real_close(log_fd);
    log_fd = -1;
    const char* l = getenv("RECALIGN_FAULT_LOG");
    if (l && *l) log_fd = open(l, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
    calls = 0;
    pending_fail = 0;
    configured = 1;
}

/* For programs that change the environment between cases (the Catch2 test): re-read it and
 * start counting again. */
void recalign_fault_shim_reset(void) {
    pthread_mutex_lock(&lock);
    configure();
    pthread_mutex_unlock(&lock);
}

static void ensure(void) {
    if (!configured) configure();
}

static int path_matches(const char* path) {
    if (!match[0] || !path) return 0;
    return exact ? !strcmp(path, match) : strstr(path, match) != NULL;
}

/* 1 and the path in buf when fd refers to a matching file. */
static int fd_matches(int fd, char* buf, size_t size) {
    if (fd < 0 || fd == log_fd || !match[0]) return 0;
    char link[64];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    const ssize_t k = readlink(link, buf, size - 1);
    if (k <= 0) return 0;
    buf[k] = '\0';
    static const char deleted[] = " (deleted)";
    const size_t dl = sizeof deleted - 1;
    if ((size_t)k > dl && !strcmp(buf + k - dl, deleted)) buf[k - dl] = '\0';
    return path_matches(buf);
}

static const char* errno_name(int e) {
    switch (e) {
        case EIO: return "EIO";
        case ENOSPC: return "ENOSPC";
        case EDQUOT: return "EDQUOT";
        case EROFS: return "EROFS";
        case EINTR: return "EINTR";
        default: return "errno";
    }
}

static void log_line(const char* what, const char* path, const char* result) {
    if (log_fd < 0) return;
    char line[4096 + 128];
    const int k = snprintf(line, sizeof line, "%s %s %s\n", what, path, result);
    if (k > 0) real_write(log_fd, line, (size_t)k < sizeof line ? (size_t)k : sizeof line - 1);
}

/* Decides, under the lock, whether this matching call of `what` fails. */
static int should_fail(const char* what) {
    if (strcmp(op, what) != 0) return 0;
    if (pending_fail) {
        pending_fail = 0;
        return 1;
    }
    if (++calls != nth) return 0;
    if (pause_first) raise(SIGSTOP);
    return 1;
}

ssize_t write(int fd, const void* buf, size_t count) {
    char path[4096];
    const int saved = errno;
    pthread_mutex_lock(&lock);
    ensure();
    const int matched = fd_matches(fd, path, sizeof path);
    errno = saved;
    if (!matched) {
        pthread_mutex_unlock(&lock);
        return real_write(fd, buf, count);
    }
    const int was_pending = pending_fail;
    const int fail = should_fail("write");
    const int go_short = fail && short_write && !was_pending && count > 1;
    char result[96];
    ssize_t r;
    int err = 0;
    if (go_short) {
        r = real_write(fd, buf, count / 2);
        err = errno;
        if (r >= 0) {
            pending_fail = 1;
            snprintf(result, sizeof result, "short %zd/%zu", r, count);
        } else {
            snprintf(result, sizeof result, "fail %s(real)", errno_name(err));
        }
    } else if (fail) {
        r = -1;
        err = fail_errno;
        snprintf(result, sizeof result, "fail %s", errno_name(err));
    } else {
        r = real_write(fd, buf, count);
        err = errno;
        if (r >= 0) snprintf(result, sizeof result, "ok %zd/%zu", r, count);
        else snprintf(result, sizeof result, "fail %s(real)", errno_name(err));
    }
    log_line("write", path, result);
    pthread_mutex_unlock(&lock);
    errno = err;
    return r;
}

static int fd_call(const char* what, fd_fn* real, int fd) {
    char path[4096];
    const int saved = errno;
    pthread_mutex_lock(&lock);
    ensure();
    const int matched = fd_matches(fd, path, sizeof path);
    errno = saved;
    if (!matched) {
        pthread_mutex_unlock(&lock);
        return (*real)(fd);
    }
    const int fail = should_fail(what);
    int r, err;
    char result[64];
    if (fail) {
        /* close releases the descriptor even when it reports an error */
        if (real == &real_close) (*real)(fd);
        r = -1;
        err = fail_errno;
        snprintf(result, sizeof result, "fail %s", errno_name(err));
    } else {
        r = (*real)(fd);
        err = errno;
        if (r == 0) snprintf(result, sizeof result, "ok");
        else snprintf(result, sizeof result, "fail %s(real)", errno_name(err));
    }
    log_line(what, path, result);
    pthread_mutex_unlock(&lock);
    errno = err;
    return r;
}

int fsync(int fd) { return fd_call("fsync", &real_fsync, fd); }
int fdatasync(int fd) { return fd_call("fdatasync", &real_fdatasync, fd); }
int close(int fd) { return fd_call("close", &real_close, fd); }

int rename(const char* from, const char* to) {
    const int saved = errno;
    pthread_mutex_lock(&lock);
    ensure();
    errno = saved;
    if (!path_matches(from)) {
        pthread_mutex_unlock(&lock);
        return real_rename(from, to);
    }
    const int fail = should_fail("rename");
    int r, err;
    char result[64];
    if (fail) {
        r = -1;
        err = fail_errno;
        snprintf(result, sizeof result, "fail %s", errno_name(err));
    } else {
        r = real_rename(from, to);
        err = errno;
        if (r == 0) snprintf(result, sizeof result, "ok");
        else snprintf(result, sizeof result, "fail %s(real)", errno_name(err));
    }
    log_line("rename", from, result);
    pthread_mutex_unlock(&lock);
    errno = err;
    return r;
}

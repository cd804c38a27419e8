// denoising_restart's strong guarantee under failing files (an executable of its own: it
// interposes libc's pread64 and fallocate64, as tests/io/test_spill_faults.cpp does, so every
// call of the process goes through them). With Sxx Q on disk (a completed refinement pass) the
// restart reads it, writes each noise's corrections beside it and reads them back: a failing
// read or a full disk at any of those calls must leave the pass as it was (its basis, Sxx Q,
// its file), so that the caller can retry or checkpoint, and the retry gives the same next pass
// as a restart that never failed. The restart makes hundreds of reads (810 at this size, most of
// them rows of one file, one patch's after another's); each of those failing is not a different
// case, so the reads that fail in turn are the first and last of every run of same-sized reads of
// one descriptor and every 64th in between, with every allocation: 46 restarts instead of 818
// (the sanitized run took 310 s with all of them). A full disk stays full: every allocation from
// the failing one on fails (a spill that finds no room closes the files kept for reuse and tries
// again, io/spill.hpp), and each restart starts with no file kept, as the counting run did.
#include <catch2/catch.hpp>

#include <dlfcn.h>
#include <fcntl.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include <recalign/align/incremental_refinement.hpp>
#include <recalign/align/sketch_denoising.hpp>
#include <recalign/align/verification.hpp>
#include <recalign/core/errors.hpp>
#include <recalign/io/spill.hpp>

#include "../common/helpers.hpp"
#include "../data_sets.hpp"
#include "refinement_data.hpp"

using namespace recalign;

namespace {
// Sxx V wherever it is (a copy: the statistics keep theirs).
matrix_t sv_of(restricted_statistics s) {
    s.load_sv();
    return s.sv;
}

struct faults {
    unsigned fail_read = 0;      // the n-th pread64 fails with EIO (0: none)
    unsigned fail_allocate = 0;  // the n-th fallocate64 and every later one fail with ENOSPC (0: none)
    unsigned reads = 0, allocations = 0;
    bool failed = false;
    bool record = false;  // note where every read goes (the counting run)
    struct read_call {
        int fd;
        off64_t offset;
        size_t n;
    };
    std::vector<read_call> calls;
} fault;

template <class F>
F next(const char* name) {
    return reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
}
}  // namespace

extern "C" {
ssize_t pread64(int fd, void* buf, size_t n, off64_t offset) {
    if (++fault.reads == fault.fail_read) {
        fault.failed = true;
        errno = EIO;
        return -1;
    }
    if (fault.record) fault.calls.push_back({fd, offset, n});
    return next<ssize_t (*)(int, void*, size_t, off64_t)>("pread64")(fd, buf, n, offset);
}
int fallocate64(int fd, int mode, off64_t offset, off64_t len) {
    if (++fault.allocations >= fault.fail_allocate && fault.fail_allocate) {  // the disk stays full
        fault.failed = true;
        errno = ENOSPC;
        return -1;
    }
    return next<int (*)(int, int, off64_t, off64_t)>("fallocate64")(fd, mode, offset, len);
}
}

TEST_CASE("denoising_restart: a failing spill read or a full disk leaves the pass as it was", "[align][refinement]") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const testing::refinement_data data(1000);  // D = 784
    // Two masking noises: the first one's corrections wait on disk while the second one's are
    // found (docs/benchmarks-log.md "mem8"), so the restart reads two files of its own besides Sxx Q.
    const std::vector<noise_spec> noises = {parse_noise_spec("mask:patch=2x2,ratio=0.25"),
                                            parse_noise_spec("mask:patch=2x2,ratio=0.5,scheme=fixed")};
    constexpr std::size_t r = 24;
    spectrum top = data.clean.spec;
    top.eigenvalues = xt::view(data.clean.spec.eigenvalues, xt::range(0, r));
    top.basis = xt::view(data.clean.spec.basis, xt::all(), xt::range(0, r));
    matrix_t q = orthonormal_extension(top.basis, sketched_denoising_subspace(top, noises[0], &data.blocks).basis);
    q = orthonormal_extension(q, sketched_denoising_subspace(top, noises[1], &data.blocks).basis);
    restricted_statistics pass = testing::verified(data.f, q);
    pass.products();
    pass.spill_sv(io::spill_directory());
    REQUIRE(pass.sv_stored);
    refinement_options o;
    o.count = 8;
    o.rank = r;
    const std::vector<const patch_blocks*> blocks{&data.blocks, &data.blocks};

    // The calls a restart makes, counted on a copy that does not fail.
    restricted_statistics counted = pass;
    io::close_kept_spills();  // every run below starts with no file kept for reuse: the same calls
    fault = {};
    fault.record = true;
    const refinement_step want = denoising_restart(top, counted, noises, blocks, o, nullptr);
    const unsigned reads = fault.reads, allocations = fault.allocations;
    const std::vector<faults::read_call> calls = fault.calls;
    fault = {};
    REQUIRE(calls.size() == reads);
    REQUIRE(!want.stopped);
    REQUIRE(want.next.known.sv_stored);
    INFO(reads << " reads and " << allocations << " allocations of spill files in a restart");
    REQUIRE(reads >= 3);        // Sxx Q, the first noise's corrections ...
    REQUIRE(allocations >= 2);  // ... and the files they go to
    const matrix_t sxx_q = sv_of(pass);

    auto check_unchanged = [&](restricted_statistics& p) {
        REQUIRE(p.basis.shape(0) == q.shape(0));  // not consumed
        CHECK(testing::rel_diff(p.basis, q) == 0.0);
        REQUIRE(p.sv_stored == pass.sv_stored);  // the same file, still there
        CHECK(p.sv.size() == 0);
        CHECK(testing::rel_diff(sv_of(p), sxx_q) == 0.0);
        // ... and a retry gives the same next pass as a restart that never failed.
        const refinement_step again = denoising_restart(top, p, noises, blocks, o, nullptr);
        CHECK(again.next.carried == want.next.carried);
        CHECK(testing::rel_diff(again.next.known.basis, want.next.known.basis) == 0.0);
        CHECK(testing::rel_diff(again.next.fresh(), want.next.fresh()) == 0.0);
        CHECK(testing::rel_diff(sv_of(again.next.known), sv_of(want.next.known)) == 0.0);
        CHECK(testing::rel_diff(again.curves, want.curves) == 0.0);
    };
    // Read i (0-based) is one more of the same kind as read i - 1 if it reads as many bytes of the
    // same descriptor (the 392 rows of a file that the blocks' products read, one patch at a time).
    auto continues = [&](std::size_t i) {
        return i > 0 && calls[i].fd == calls[i - 1].fd && calls[i].n == calls[i - 1].n;
    };
    std::vector<unsigned> failing;  // 1-based call numbers, reads first, then allocations
    for (std::size_t i = 0; i < calls.size(); ++i)
        if (!continues(i) || i + 1 == calls.size() || !continues(i + 1) || i % 64 == 0)
            failing.push_back(static_cast<unsigned>(i + 1));
    const std::size_t read_faults = failing.size();
    for (unsigned n = 1; n <= allocations; ++n) failing.push_back(reads + n);
    INFO(read_faults << " of the reads fail in turn");
    REQUIRE(read_faults >= 6);  // a beginning and an end in each of the three files at least
    // Each of those calls in turn fails (a copy of the pass each time, checked, then retried).
    for (const unsigned n : failing) {
        const bool read = n <= reads;
        INFO((read ? "the read " : "the spill file ") << (read ? n : n - reads) << " of "
                                                       << (read ? reads : allocations) << " fails");
        restricted_statistics p = pass;
        io::close_kept_spills();
        fault = {};
        (read ? fault.fail_read : fault.fail_allocate) = read ? n : n - reads;
        CHECK_THROWS_AS(denoising_restart(top, p, noises, blocks, o, nullptr), file_error);
        const bool failed = fault.failed;
        fault = {};
        REQUIRE(failed);
        check_unchanged(p);
    }
}

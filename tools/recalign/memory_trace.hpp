// A diagnostic for measuring where a run's memory goes (docs/benchmarks-log.md): with the environment
// variable RECALIGN_MEMORY_TRACE set to anything but "" or "0", memory_mark("phase") writes one
// line to stderr with the resident set now and its peak since the previous mark (VmRSS, VmHWM
// of /proc/self/status) and a lower bound of the anonymous memory held outside malloc (RssAnon
// minus the bytes mallinfo2 says malloc has mapped: OpenBLAS's buffers), then resets the peak
// (/proc/self/clear_refs, "5"). Each line also gives the wall time since the program started
// (the time split by phase, from the same run). The reset lowers the peak the kernel hands
// getrusage too: under the trace, /usr/bin/time's "Maximum resident set size" is only the peak
// since the last mark (the forty-sixth session: 2,327,124 KiB for a run whose marks' peaks
// reached 3,254,440 kB); the run's peak is the largest of the marks' and that. Otherwise (unset,
// "" or "0") it does nothing.
#pragma once

namespace recalign::cli {

void memory_mark(const char* phase);

// Gives the pages malloc holds free back to the system (glibc's malloc_trim). A run's batch
// buffers, once freed, stay resident in the heap where glibc's dynamic mmap threshold had put
// them (35.9 MiB at D = 4,096 with 1,000-row batches, docs/benchmarks-log.md "The thirty-fourth
// session"); the analyses after the stream would otherwise hold them beside their D x D matrices.
void release_free_memory();

}  // namespace recalign::cli

// A diagnostic for measuring where a run's memory goes (docs/benchmarks-log.md): with the environment
// variable RECALIGN_MEMORY_TRACE set to anything but "" or "0", memory_mark("phase") writes one
// line to stderr with the resident set now and its peak since the previous mark (VmRSS, VmHWM
// of /proc/self/status) and a lower bound of the anonymous memory held outside malloc (RssAnon
// minus the bytes mallinfo2 says malloc has mapped: OpenBLAS's buffers), then resets the peak
// (/proc/self/clear_refs, "5"). Each line also gives the wall time since the program started
// (the time split by phase, from the same run). Otherwise (unset,
// "" or "0") it does nothing.
#pragma once

namespace recalign::cli {

void memory_mark(const char* phase);

}  // namespace recalign::cli

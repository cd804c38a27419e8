#include <catch2/catch.hpp>
#include <cereal/archives/portable_binary.hpp>

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>
#include <system_error>
#include <thread>
#include <vector>

#include <recalign/align/tracker.hpp>
#include <recalign/core/hash.hpp>
#include <recalign/core/serial.hpp>
#include <recalign/io/files.hpp>
#include <recalign/sketch/frequent_directions.hpp>
#include <recalign/sketch/nystrom_sketch.hpp>
#include <recalign/stats/class_moments.hpp>
#include <recalign/stats/moments.hpp>

#include "../common/helpers.hpp"

using namespace recalign;

#ifndef RECALIGN_TEST_DATA
#error "RECALIGN_TEST_DATA must name tests/data"
#endif
#ifndef RECALIGN_CHECKPOINT_SEEDS
#error "RECALIGN_CHECKPOINT_SEEDS must name tests/fuzz/corpus/checkpoint"
#endif

namespace {

moment_accumulator sample_state(std::size_t n = 300, std::size_t d = 6, std::size_t classes = 3) {
    const auto x = testing::random_rows(n, d, 101);
    const auto y = testing::random_labels(n, classes, 102);
    moment_accumulator m({d, target_mode::class_ids, classes});
    for (std::size_t r = 0; r < n; r += 64) {
        const std::size_t b = std::min<std::size_t>(64, n - r);
        m.update(batch_view(x.data() + r * d, b, d), target_view::class_ids(y.data() + r, b));
    }
    return m;
}

std::string temp_dir() {
    char tmpl[] = "/tmp/recalign-test-XXXXXX";
    const char* d = ::mkdtemp(tmpl);
    REQUIRE(d != nullptr);
    return d;
}

std::string read_all(const std::string& path) {
    std::ifstream is(path, std::ios::binary);
    return std::string(std::istreambuf_iterator<char>(is), {});
}

}  // namespace

TEST_CASE("save then load round-trips bit for bit, and continuing matches not stopping", "[checkpoint]") {
    const moment_accumulator m = sample_state();
    const std::string bytes = testing::saved(m);
    const moment_accumulator back = testing::loaded<moment_accumulator>(bytes);
    CHECK(testing::saved(back) == bytes);
    CHECK(back.n() == m.n());
    CHECK(testing::bit_equal(back.scatter_upper(), m.scatter_upper()));
    CHECK(testing::bit_equal(back.sxy(centering::uncentered), m.sxy(centering::uncentered)));

    const auto x = testing::random_rows(50, 6, 103);
    const auto y = testing::random_labels(50, 3, 104);
    moment_accumulator a = m, b = back;
    a.update(batch_view(x.data(), 50, 6), target_view::class_ids(y.data(), 50));
    b.update(batch_view(x.data(), 50, 6), target_view::class_ids(y.data(), 50));
    CHECK(testing::saved(a) == testing::saved(b));
}

TEST_CASE("every truncation of a checkpoint throws a file_error", "[checkpoint]") {
    const std::string bytes = testing::saved(sample_state(40, 3, 2));
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        INFO("truncated to " << len << " of " << bytes.size() << " bytes");
        CHECK_THROWS_AS(testing::loaded<moment_accumulator>(bytes.substr(0, len)), file_error);
    }
}

TEST_CASE("every single-byte change of a checkpoint is detected", "[checkpoint]") {
    const std::string bytes = testing::saved(sample_state(40, 3, 2));
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        for (unsigned char flip : {0x01, 0x80, 0xff}) {
            std::string bad = bytes;
            bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ flip);
            INFO("byte " << i << " xor " << int(flip));
            CHECK_THROWS_AS(testing::loaded<moment_accumulator>(bad), file_error);
        }
    }
}

namespace {
// A header that passes every header check (valid CRC) but announces an absurd state.
std::string crafted(std::uint64_t dim, std::uint64_t payload_bytes, const std::string& payload) {
    checkpoint::header h;
    h.kind = checkpoint::state_kind::moments;
    h.dim = dim;
    std::ostringstream os(std::ios::binary);
    checkpoint::write_framed(os, h, payload);
    std::string s = os.str();
    // Re-stamp the payload size and fix the header checksum.
    std::memcpy(&s[48], &payload_bytes, 8);
    const std::uint32_t crc = recalign::crc32(s.data(), 60);
    std::memcpy(&s[60], &crc, 4);
    return s;
}

}  // namespace

TEST_CASE("to_bytes / from_bytes are the stream form's bytes, refused alike when damaged", "[checkpoint]") {
    const moment_accumulator m = sample_state(40, 3, 2);
    const std::string bytes = checkpoint::to_bytes(m);
    CHECK(bytes == testing::saved(m));  // one framing, whichever route wrote it
    CHECK(bytes.capacity() == bytes.size());  // reserved exactly: no regrowth while serializing
    const moment_accumulator back = checkpoint::from_bytes<moment_accumulator>(bytes);
    CHECK(checkpoint::to_bytes(back) == bytes);
    for (std::size_t len = 0; len < bytes.size(); ++len) {
        INFO("truncated to " << len << " of " << bytes.size() << " bytes");
        CHECK_THROWS_AS(checkpoint::from_bytes<moment_accumulator>(std::string_view(bytes).substr(0, len)), file_error);
    }
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        std::string bad = bytes;
        bad[i] = static_cast<char>(static_cast<unsigned char>(bad[i]) ^ 0x80);
        INFO("byte " << i);
        CHECK_THROWS_AS(checkpoint::from_bytes<moment_accumulator>(bad), file_error);
    }
    // A stream may carry more after a state; a byte range must be exactly one state.
    try {
        checkpoint::from_bytes<moment_accumulator>(bytes + "xy", "blob");
        FAIL("stray bytes accepted");
    } catch (const file_error& e) {
        CHECK(e.offset() == bytes.size());
        CHECK(std::string(e.what()).find("2 stray bytes") != std::string::npos);
    }
}

TEST_CASE("absurd checkpoints are refused before any large allocation", "[checkpoint][limits]") {
    testing::reset_peak_rss();
    const long before = testing::peak_rss_kb();
    // 2^20 dimensions = 2^40 matrix elements, with a tiny payload.
    CHECK_THROWS_AS(testing::loaded<moment_accumulator>(crafted(1ULL << 20, 16, std::string(16, '\0'))), file_error);
    // A payload size of 2^39 bytes on a file of a few bytes: truncation, without reserving 2^39.
    CHECK_THROWS_WITH(testing::loaded<moment_accumulator>(crafted(4, 1ULL << 39, "abc")), Catch::Contains("truncated"));
    // Over the 1 TiB limit and a dimension beyond BLAS's index range.
    CHECK_THROWS_AS(testing::loaded<moment_accumulator>(crafted(4, 1ULL << 50, "")), file_error);
    CHECK_THROWS_WITH(testing::loaded<moment_accumulator>(crafted(1ULL << 40, 0, "")), Catch::Contains("absurd"));
    // A self-consistent payload (valid checksum) that announces 2^20 dimensions.
    {
        std::ostringstream payload(std::ios::binary);
        {
            cereal::PortableBinaryOutputArchive ar(payload);
            ar(std::uint64_t(1) << 20, std::uint8_t(0), std::uint64_t(0), std::uint8_t(0), std::uint64_t(5));
        }
        checkpoint::header h;
        h.kind = checkpoint::state_kind::moments;
        h.dim = 1ULL << 20;
        std::ostringstream os(std::ios::binary);
        checkpoint::write_framed(os, h, payload.str());
        CHECK_THROWS_WITH(testing::loaded<moment_accumulator>(os.str()), Catch::Contains("cannot fit"));
    }
    CHECK(testing::peak_rss_kb() - before < 50 * 1024);
}

namespace {
// A program's own state framed by the library's mechanism (as the CLI frames its run state):
// a kind value the library does not list, named by kind_label, payload code inline.
struct program_state {
    static constexpr checkpoint::state_kind kind{200};
    static constexpr const char* kind_label = "program_state";
    std::uint64_t rows = 0;
    std::string name;

    std::uint64_t dim() const { return rows; }
    std::uint64_t aux_dim() const { return name.size(); }
    std::uint64_t config_hash() const { return recalign::fnv1a().add(std::string_view(name)).value(); }

    template <class Archive>
    void save_payload(Archive& ar) const {
        ar(rows, static_cast<std::uint64_t>(name.size()));
        ar(cereal::binary_data(name.data(), name.size()));
    }
    template <class Archive>
    static program_state load_payload(Archive& ar, checkpoint::budget& b) {
        program_state s;
        std::uint64_t len = 0;
        checkpoint::load_scalar(ar, s.rows, b);
        checkpoint::load_scalar(ar, len, b);
        b.take(len, "name");
        s.name.resize(static_cast<std::size_t>(len));
        ar(cereal::binary_data(&s.name[0], s.name.size()));
        return s;
    }
};
}  // namespace

TEST_CASE("a kind the library does not list frames like a library kind, and refusals name it", "[checkpoint]") {
    program_state p;
    p.rows = 12345;
    p.name = "shard 3 of 7";
    const std::string bytes = checkpoint::to_bytes(p);
    std::uint32_t stored = 0;
    std::memcpy(&stored, &bytes[16], 4);
    CHECK(stored == 200);
    const program_state back = checkpoint::from_bytes<program_state>(bytes);
    CHECK(back.rows == p.rows);
    CHECK(back.name == p.name);
    CHECK(checkpoint::to_bytes(back) == bytes);
    // The library has no name for it; the program's own refusals do.
    CHECK(checkpoint::kind_name(program_state::kind) == "state of kind 200");
    CHECK_THROWS_WITH(checkpoint::from_bytes<moment_accumulator>(bytes),
                      Catch::Contains("byte offset 16") && Catch::Contains("holds a state of kind 200") &&
                          Catch::Contains("expected a moment_accumulator"));
    const std::string moments = checkpoint::to_bytes(sample_state(20, 3, 2));
    std::istringstream is(moments, std::ios::binary);
    CHECK_THROWS_WITH(checkpoint::load_state<program_state>(is),
                      Catch::Contains("holds a moment_accumulator, expected a program_state"));
    // Its payload gets the same checks as a library state's: budget, header agreement.
    std::string claimed = bytes;
    const std::uint64_t other_dim = 54321;
    std::memcpy(&claimed[24], &other_dim, 8);
    const std::uint32_t crc = recalign::crc32(claimed.data(), 60);
    std::memcpy(&claimed[60], &crc, 4);
    CHECK_THROWS_WITH(checkpoint::from_bytes<program_state>(claimed),
                      Catch::Contains("byte offset 64") && Catch::Contains("dimensions disagree"));
    // A name longer than the payload holds is refused by the budget, before it is allocated.
    std::ostringstream payload(std::ios::binary);
    {
        cereal::PortableBinaryOutputArchive ar(payload);
        ar(std::uint64_t(1), std::uint64_t(1) << 40);
    }
    checkpoint::header h;
    h.kind = program_state::kind;
    h.dim = 1;
    std::ostringstream framed(std::ios::binary);
    checkpoint::write_framed(framed, h, payload.str());
    CHECK_THROWS_WITH(checkpoint::from_bytes<program_state>(framed.str()),
                      Catch::Contains("byte offset 64") && Catch::Contains("name needs 1099511627776 bytes"));
}

TEST_CASE("loading the wrong kind of state or a non-checkpoint is a clear error", "[checkpoint]") {
    std::string bytes = testing::saved(sample_state(20, 3, 2));
    std::string other = bytes;
    const std::uint32_t kind = static_cast<std::uint32_t>(checkpoint::state_kind::nystrom);
    std::memcpy(&other[16], &kind, 4);
    const std::uint32_t crc = recalign::crc32(other.data(), 60);
    std::memcpy(&other[60], &crc, 4);
    CHECK_THROWS_WITH(testing::loaded<moment_accumulator>(other), Catch::Contains("nystrom_sketch"));
    CHECK_THROWS_WITH(testing::loaded<moment_accumulator>(std::string(100, 'x')), Catch::Contains("magic"));
    std::string newer = bytes;
    const std::uint32_t v = 99;
    std::memcpy(&newer[8], &v, 4);
    const std::uint32_t crc2 = recalign::crc32(newer.data(), 60);
    std::memcpy(&newer[60], &crc2, 4);
    CHECK_THROWS_WITH(testing::loaded<moment_accumulator>(newer), Catch::Contains("version 99"));
}

TEST_CASE("write_to hands to_bytes's bytes over in pieces, the header first, large arrays without a copy",
          "[checkpoint]") {
    for (const std::size_t d : {2, 3, 200}) {  // D = 200: Sxx's 320 kB pass through as one piece
        const moment_accumulator m = sample_state(40, d, 2);
        std::string joined;
        std::vector<std::size_t> pieces;
        checkpoint::write_to(m, [&](const char* p, std::size_t n) {
            joined.append(p, n);
            pieces.push_back(n);
        });
        CAPTURE(d);
        CHECK(joined == checkpoint::to_bytes(m));
        REQUIRE(!pieces.empty());
        CHECK(pieces.front() == checkpoint::header_bytes);
        if (d == 200) CHECK(*std::max_element(pieces.begin(), pieces.end()) >= 8 * d * d);
    }
}

TEST_CASE("a state holding empty matrices streams and loads like any other", "[checkpoint]") {
    // A tracker before its first report holds an empty previous curve, whose data() is null:
    // the gathering buffer of write_to must not hand it to memcpy (UBSan caught it in the
    // CLI's kill-and-resume tests, stop 25's CI).
    tracker_options o;
    o.dim = 4;
    o.classes = 2;
    o.shape = {2, 2, 1, image_layout::hwc};
    alignment_tracker t(o);
    const auto x = testing::random_rows(7, 4, 3);
    const auto y = testing::random_labels(7, 2, 4);
    t.update(batch_view(x.data(), 7, 4), target_view::class_ids(y.data(), 7));
    std::string joined;
    checkpoint::write_to(t, [&](const char* p, std::size_t n) { joined.append(p, n); });
    CHECK(joined == checkpoint::to_bytes(t));
    CHECK(checkpoint::to_bytes(checkpoint::from_bytes<alignment_tracker>(joined)) == joined);
    const std::string dir = temp_dir();
    checkpoint::save_file_once(dir + "/empty.ckpt", t);
    CHECK(read_all(dir + "/empty.ckpt") == joined);
    std::remove((dir + "/empty.ckpt").c_str());
    ::rmdir(dir.c_str());
}

TEST_CASE("atomic file writes replace the old file and leave no temporary behind", "[checkpoint][files]") {
    const std::string dir = temp_dir();
    const std::string path = dir + "/state.ckpt";
    const moment_accumulator a = sample_state(30, 3, 2), b = sample_state(60, 3, 2);
    checkpoint::save_file(path, a);
    CHECK(checkpoint::load_file<moment_accumulator>(path).n() == 30);
    checkpoint::save_file(path, b);
    CHECK(checkpoint::load_file<moment_accumulator>(path).n() == 60);
    CHECK(read_all(path) == testing::saved(b));
    // Only the checkpoint is in the directory.
    int entries = 0;
    for (const char* name : {"state.ckpt"}) entries += std::ifstream(dir + "/" + name).good();
    CHECK(entries == 1);
    CHECK(std::system(("test $(ls -A " + dir + " | wc -l) -eq 1").c_str()) == 0);
    // A write that cannot happen throws and leaves the old file intact.
    CHECK_THROWS_AS(checkpoint::save_file(dir + "/missing/dir/state.ckpt", a), std::system_error);
    CHECK(read_all(path) == testing::saved(b));
    // Errors loading a file name the file.
    std::ofstream(dir + "/bad.ckpt", std::ios::binary) << "RECALIGN";
    CHECK_THROWS_WITH(checkpoint::load_file<moment_accumulator>(dir + "/bad.ckpt"), Catch::Contains(dir + "/bad.ckpt"));
    CHECK_THROWS_AS(checkpoint::load_file<moment_accumulator>(dir + "/nope.ckpt"), file_error);
    std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a pipe or device is written in place, never replaced by a renamed file", "[checkpoint][files]") {
    // recalign-synth --output /dev/null, run as root, once renamed its temporary onto /dev/null:
    // every later write to /dev/null on the machine went to a file in memory.
    const std::string dir = temp_dir();
    const std::string fifo = dir + "/out.fifo";
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    std::string got;
    std::thread reader([&] {
        std::ifstream in(fifo, std::ios::binary);
        got.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    });
    checkpoint::write_file_atomic(fifo, "through the pipe");
    struct stat st {};
    REQUIRE(::stat(fifo.c_str(), &st) == 0);
    if (!S_ISFIFO(st.st_mode)) {  // replaced: the reader may wait on the old node for ever
        reader.detach();
        FAIL("the FIFO was replaced by a regular file");
    }
    reader.join();
    CHECK(got == "through the pipe");
    CHECK(std::system(("test $(ls -A " + dir + " | wc -l) -eq 1").c_str()) == 0);  // no temporary
    // A state's header is written last, over its start: refused (ESPIPE), naming the path.
    std::thread drain([&] { std::ifstream in(fifo, std::ios::binary); in.ignore(1 << 30); });
    try {
        checkpoint::save_file_once(fifo, sample_state(30, 3, 2));
        FAIL("a state was written to a pipe");
    } catch (const std::system_error& e) {
        CHECK(e.code().value() == ESPIPE);
        CHECK_THAT(e.what(), Catch::Contains(fifo));
    }
    drain.join();
    REQUIRE(::stat(fifo.c_str(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
    // A character device: a node of the null device of our own (root only), so that a
    // regression replaces this node and not the machine's /dev/null.
    const std::string null = dir + "/null";
    if (::mknod(null.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        checkpoint::save_file(null, sample_state(30, 3, 2));
        REQUIRE(::stat(null.c_str(), &st) == 0);
        CHECK(S_ISCHR(st.st_mode));
        CHECK(std::system(("test $(ls -A " + dir + " | wc -l) -eq 2").c_str()) == 0);
    }
    std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("a symbolic link stays a link: the file it names is replaced atomically", "[checkpoint][files]") {
    const std::string dir = temp_dir();
    REQUIRE(std::system(("mkdir -p " + dir + "/real").c_str()) == 0);
    const std::string target = dir + "/real/state.ckpt", link = dir + "/state.ckpt";
    std::ofstream(target, std::ios::binary) << "old";
    REQUIRE(::symlink("real/state.ckpt", link.c_str()) == 0);
    std::ofstream(target + ".tmp.abc123", std::ios::binary) << "left by a killed write";
    CHECK(checkpoint::remove_stale_temporaries(link) == 1);  // beside the file the link names
    const moment_accumulator a = sample_state(30, 3, 2);
    checkpoint::save_file(link, a);
    struct stat st {};
    REQUIRE(::lstat(link.c_str(), &st) == 0);
    CHECK(S_ISLNK(st.st_mode));
    CHECK(read_all(target) == testing::saved(a));
    CHECK(checkpoint::load_file<moment_accumulator>(link).n() == 30);
    CHECK(checkpoint::write_target(link) == checkpoint::write_target(target));
    CHECK(std::system(("test $(ls -A " + dir + "/real | wc -l) -eq 1").c_str()) == 0);  // no temporary
    CHECK(std::system(("test $(ls -A " + dir + " | wc -l) -eq 2").c_str()) == 0);
    std::system(("rm -rf " + dir).c_str());
}

// The golden checkpoint pins the format: if this fails, the on-disk format changed, so bump
// checkpoint::format_version deliberately (and regenerate with make_golden below).
namespace {
moment_accumulator golden_state() {
    moment_accumulator m({3, target_mode::class_ids, 2});
    const double x[] = {1, 2, 3, 4, 5, 6.5, -1, 0.25, 8, 2, 2, 2};
    const std::int64_t y[] = {0, 1, 1, 0};
    m.update(batch_view(x, 3, 3), target_view::class_ids(y, 3));
    m.update(batch_view(x + 9, 1, 3), target_view::class_ids(y + 3, 1));
    return m;
}
}  // namespace

TEST_CASE("remove_stale_temporaries removes what killed writes of that file left, and nothing else", "[checkpoint][files]") {
    const std::string dir = temp_dir();
    const std::string path = dir + "/state.ckpt";
    checkpoint::save_file(path, sample_state(30, 3, 2));
    const std::string keep = read_all(path);
    auto touch = [&](const std::string& name) { std::ofstream(dir + "/" + name, std::ios::binary) << "partial"; };
    touch("state.ckpt.tmp.a1B2c3");   // left by killed writes: removed
    touch("state.ckpt.tmp.ZZZZZZ");
    touch("state.ckpt.tmp.abc");      // not mkstemp's six characters: kept
    touch("state.ckpt.tmp.ab-d_f");   // not letters and digits: kept
    touch("other.ckpt.tmp.a1B2c3");   // another file's: kept
    touch("state.ckpt.rank1.tmp.a1B2c3");  // another rank's: kept
    CHECK(checkpoint::remove_stale_temporaries(path) == 2);
    CHECK(read_all(path) == keep);
    for (const char* name : {"state.ckpt.tmp.abc", "state.ckpt.tmp.ab-d_f", "other.ckpt.tmp.a1B2c3",
                             "state.ckpt.rank1.tmp.a1B2c3"})
        CHECK(std::ifstream(dir + "/" + name).good());
    CHECK_FALSE(std::ifstream(dir + "/state.ckpt.tmp.a1B2c3").good());
    CHECK(checkpoint::remove_stale_temporaries(path) == 0);
    CHECK(checkpoint::remove_stale_temporaries(dir + "/missing/state.ckpt") == 0);
    std::system(("rm -rf " + dir).c_str());
}

TEST_CASE("the committed golden checkpoint loads and equals a recomputation", "[checkpoint][golden]") {
    const std::string path = std::string(RECALIGN_TEST_DATA) + "/golden_moments_v1.ckpt";
    if (std::getenv("RECALIGN_WRITE_GOLDEN")) checkpoint::save_file(path, golden_state());
    const moment_accumulator g = checkpoint::load_file<moment_accumulator>(path);
    const moment_accumulator fresh = golden_state();
    CHECK(g.n() == 4);
    CHECK(g.dim() == 3);
    CHECK(g.classes() == 2);
    // Re-saving what was loaded reproduces the committed bytes: the format is unchanged.
    CHECK(testing::saved(g) == read_all(path));
    // And the statistics are those of the data (to rounding: the arithmetic may improve
    // between versions without the format changing).
    CHECK(testing::rel_diff(g.sxx(centering::uncentered), fresh.sxx(centering::uncentered)) < 1e-14);
    CHECK(testing::rel_diff(g.sxx(centering::centered), fresh.sxx(centering::centered)) < 1e-14);
    CHECK(testing::rel_diff(g.sxy(centering::centered), fresh.sxy(centering::centered)) < 1e-14);
}

namespace {
template <class T>
std::string resaved(const std::string& bytes) {
    return checkpoint::to_bytes(checkpoint::from_bytes<T>(bytes));
}
}  // namespace

// The golden file pins the moments' format; the fuzz seeds (tests/fuzz/make_seeds.cpp: a
// mode byte, then a checkpoint as the library wrote it) pin every other kind's: loading one
// and saving it again gives the committed bytes back.
TEST_CASE("every committed seed checkpoint re-serializes to its own bytes", "[checkpoint][golden]") {
    const std::string dir = RECALIGN_CHECKPOINT_SEEDS;
    std::vector<std::uint32_t> kinds;
    for (const char* name : {"moments_labels", "moments_empty", "frequent_directions", "nystrom", "tracker_closed_form",
                             "tracker_monte_carlo", "class_moments"}) {
        INFO("seed " << name);
        const std::string file = read_all(dir + "/" + name + ".raw");
        REQUIRE(file.size() > 1 + checkpoint::header_bytes);
        const std::string bytes = file.substr(1);
        std::uint32_t kind = 0;
        std::memcpy(&kind, &bytes[16], 4);
        switch (static_cast<checkpoint::state_kind>(kind)) {
            case checkpoint::state_kind::moments: CHECK(resaved<moment_accumulator>(bytes) == bytes); break;
            case checkpoint::state_kind::frequent_directions: CHECK(resaved<frequent_directions>(bytes) == bytes); break;
            case checkpoint::state_kind::nystrom: CHECK(resaved<nystrom_sketch>(bytes) == bytes); break;
            case checkpoint::state_kind::tracker: CHECK(resaved<alignment_tracker>(bytes) == bytes); break;
            case checkpoint::state_kind::class_moments: CHECK(resaved<class_moments>(bytes) == bytes); break;
            default: FAIL("seed of kind " << kind);
        }
        kinds.push_back(kind);
    }
    // The Monte-Carlo tracker seed nests a noise state: every kind with a payload but the
    // patch blocks (no seed yet) is covered.
    std::sort(kinds.begin(), kinds.end());
    CHECK(std::unique(kinds.begin(), kinds.end()) - kinds.begin() == 5);
}

// `recalign align --json` on a Fashion-MNIST subset equals, bit for bit, the library's own
// numbers computed here directly (idx_reader -> moment_accumulator -> alignment_curve), for
// several batch sizes on the CLI side... and the same batch boundaries on both sides.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include <recalign/recalign.hpp>

#include "../data_sets.hpp"

using namespace recalign;

namespace {
std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = ::popen(cmd.c_str(), "r");
    REQUIRE(p != nullptr);
    char buf[65536];
    std::size_t got;
    while ((got = std::fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, got);
    const int rc = ::pclose(p);
    REQUIRE(rc == 0);
    return out;
}
}  // namespace

TEST_CASE("align JSON on 3000 Fashion-MNIST images equals the library's numbers") {
    RECALIGN_SKIP_WITHOUT_FASHION_MNIST();
    const io::fashion_mnist_files files = io::fashion_mnist();
    const std::size_t n = 3000, batch = 250;
    io::idx_reader images(files.train_images), labels(files.train_labels);
    const std::size_t d = images.cols();
    moment_accumulator acc({d, target_mode::class_ids, 10});
    // What the CLI keeps: the moments of x alone and the class statistics (D x C).
    moment_accumulator x_only({d});
    class_moments classes({d, 10});
    io::row_block block;
    std::vector<std::int64_t> y;
    std::size_t done = 0;
    while (done < n && images.read(std::min(batch, n - done), block) > 0) {
        labels.read_labels(block.rows, y);
        // The pixels as the CLI hands them over: the stored uint8 rows, scaled by 1/255 in the view
        // (uint8 takes the moments' exact integer path; float64 copies would round differently).
        batch_view px = block.view();
        px.scale = 1.0 / 255.0;
        acc.update(px, target_view::class_ids(y.data(), y.size()), done);
        x_only.update(px, done);
        classes.update(px, target_view::class_ids(y.data(), y.size()), done);
        done += block.rows;
    }
    // A library-level moment checkpoint analysed by the CLI (--from) gives the same numbers,
    // and merge accepts such checkpoints too.
    char dir[] = "/tmp/recalign-fashion-cli-XXXXXX";
    REQUIRE(::mkdtemp(dir) != nullptr);
    const std::string ck = std::string(dir) + "/moments.ckpt", twice = std::string(dir) + "/twice.ckpt";
    checkpoint::save_file(ck, acc);
    {
        const alignment_result a = alignment_curve(finish(acc, centering::uncentered), alignment_options{});
        const nlohmann::json j = nlohmann::json::parse(run(std::string(RECALIGN_CLI) + " align --json --from " + ck));
        CHECK(j["n"].get<std::uint64_t>() == n);
        CHECK(j["alignment"].get<std::vector<double>>() == std::vector<double>(a.curve.begin(), a.curve.end()));
        run(std::string(RECALIGN_CLI) + " merge " + ck + " " + ck + " -o " + twice + " > /dev/null");
        const nlohmann::json m = nlohmann::json::parse(run(std::string(RECALIGN_CLI) + " spectrum --json --from " + twice));
        const spectrum s = exact_spectrum(acc, centering::centered);
        CHECK(m["n"].get<std::uint64_t>() == 2 * n);
        const std::vector<double> ev = m["eigenvalues"].get<std::vector<double>>();
        for (std::size_t k = 0; k < 10; ++k) CHECK(ev[k] == Approx(2 * s.eigenvalues(k)).epsilon(1e-10));
        ::unlink(ck.c_str());
        ::unlink(twice.c_str());
        ::rmdir(dir);
    }
    for (const char* measure : {"paper", "fit"})
        for (bool centered : {false, true}) {
            alignment_options opt;
            opt.measure = parse_measure(measure);
            const centering c = centered ? centering::centered : centering::uncentered;
            statistics xs = finish(x_only, c);
            const alignment_result a = alignment_curve(
                make_statistics(std::move(xs.spec), std::move(xs.mean), classes.cross(c), std::move(xs.second_moment)), opt);
            const alignment_result joint = alignment_curve(finish(acc, c), opt);
            const std::string cmd = std::string(RECALIGN_CLI) + " align --limit 3000 --batch 250 --json --quiet --measure " +
                                    measure + (centered ? " --center" : "");
            const nlohmann::json j = nlohmann::json::parse(run(cmd));
            INFO(cmd);
            CHECK(j["n"].get<std::uint64_t>() == n);
            CHECK(j["d"].get<std::size_t>() == d);
            CHECK(j["classes"].get<std::size_t>() == 10);
            CHECK(j["centered"].get<bool>() == centered);
            const std::vector<double> ev = j["eigenvalues"].get<std::vector<double>>();
            const std::vector<double> al = j["alignment"].get<std::vector<double>>();
            REQUIRE(ev.size() == a.eigenvalues.size());
            REQUIRE(al.size() == a.curve.size());
            // Bit for bit the library's numbers from the same two accumulators; and, up to
            // rounding, those of the (D + C)² joint scatter the CLI used to keep.
            std::size_t differ = 0, far = 0;
            for (std::size_t k = 0; k < ev.size(); ++k) {
                differ += ev[k] != a.eigenvalues(k) || al[k] != a.curve(k);
                far += std::abs(ev[k] - joint.eigenvalues(k)) > 1e-10 * joint.eigenvalues(0) ||
                       std::abs(al[k] - joint.curve(k)) > 1e-10 * std::abs(joint.curve(joint.curve.size() - 1));
            }
            CHECK(differ == 0);
            CHECK(far == 0);
        }
}

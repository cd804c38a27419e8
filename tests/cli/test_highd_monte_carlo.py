"""Issue 14 item 2, second half: Monte-Carlo noises on the sketch routes of `denoise`, end to
end. On 600 Fashion-MNIST images (D = 784) `--method nystrom --rank 256` verifies on a span
that covers R^784 (256 + 3 x 266 directions), so the answer must be the exact route's on the
same draws, to rounding, beside a closed-form noise in the same call; JSON says what is exact;
SIGKILL during the verification pass, then --resume, gives the same bytes."""
import json
import os

import cli_common as c

MC = "mask:patch=4x4,ratio=0.75,draws=4,seed=11"
CLOSED = "mask:patch=2x2,ratio=0.5,scheme=fixed"


def fashion_args(fashion_mnist, limit):
    images, labels = fashion_mnist
    return ["denoise", "--images", images, "--labels", labels, "--limit", limit, "--image-shape", "28,28,1",
            "--json", "--quiet"]


def test_monte_carlo_on_nystrom_is_the_exact_route_when_the_span_covers_r_d(fashion_mnist):
    args = fashion_args(fashion_mnist, 600) + ["--noise", MC, "--noise", CLOSED]
    exact = json.loads(c.run(args, check_rc=0)[1])
    sketch = json.loads(c.run(args + ["--method", "nystrom", "--rank", 256, "--seed", 1], check_rc=0)[1])
    assert sketch["exact_for"] == "returned subspaces" and sketch["sketch_error"]["verified"]
    for e, s in zip(exact["noises"], sketch["noises"]):
        assert e["spec"] == s["spec"] and e["monte_carlo"] == s["monte_carlo"]
        k = min(64, len(e["relative"]), len(s["relative"]))
        assert k == 64
        worst = max(abs(a - b) for a, b in zip(e["relative"][:k], s["relative"][:k]))
        print(s["spec"], "max |relative difference - exact| for K <= 64:", worst)
        assert worst < 1e-8, f"{s['spec']}: {worst}"
    mc = sketch["noises"][0]
    assert mc["monte_carlo"] and mc["g_stderr_fro"] is None  # not estimated on sketch routes


def test_kill_in_the_verification_pass_then_resume(tmp, fashion_mnist):
    args = fashion_args(fashion_mnist, 1500) + ["--noise", MC, "--method", "nystrom", "--rank", 16, "--batch", 100]
    rc, reference, err = c.run(args)
    assert rc == 0, err
    # pass 0: the sketches; 1: verification
    _, rc, out, err = c.kill_then_resume(args, os.path.join(tmp, "mc.ckpt"),
                                         lambda s: s["pass"] == 1 and s["rows_done"] >= 600, 200,
                                         "in the verification pass", timeout=90)
    assert rc == 0 and out == reference, f"resume in the verification pass: exit {rc}, identical={out == reference} {err}"

"""Block Krylov Nyström (Musco & Musco 2015; Tropp & Webber 2023, §11) against NumPy.

dump_krylov runs nystrom_sketch with blocks = 1 (subspace iteration) and blocks = PASSES
(block Krylov) at 1..PASSES passes on a small power-law data set and prints the data, the
test matrix [Ω | G] and every result. Here, independently of the library's algebra:
M = the exact centered scatter; the Krylov basis K = orth[Ω, MΩ, ..., M^(q-1)Ω]; the Nyström
approximation M K (Kᵀ M K)⁺ Kᵀ M; its top-k eigenpairs; subspace iteration with the top s
eigenvectors of each pass's approximation as the next test matrix; the probes' estimate
sqrt(mean_j ‖M g_j − Ĉ_k g_j‖²) and the true ‖M − Ĉ_k‖_F.
    krylov_oracle.py DUMP_KRYLOV
"""
import json
import subprocess
import sys

try:
    import numpy as np
except ImportError:
    sys.exit(77)

D, N, K, P, Q = 60, 300, 5, 3, 3


def top(m, k):
    w, v = np.linalg.eigh((m + m.T) / 2)
    order = np.argsort(w)[::-1][:k]
    return w[order], v[:, order]


def nystrom(m, t):
    y = m @ t
    return y @ np.linalg.pinv(t.T @ y, rcond=1e-13, hermitian=True) @ y.T


def main():
    j = json.loads(subprocess.run([sys.argv[1], str(D), str(N), str(K), str(P), str(Q)],
                                  check=True, capture_output=True, text=True).stdout)
    s = j["s"]
    x = np.array(j["x"]).reshape(N, D)
    test = np.array(j["test"]).reshape(D, -1)
    omega, g = test[:, :s], test[:, s:]
    xc = x - x.mean(axis=0)
    m = xc.T @ xc
    lam = np.sort(np.linalg.eigvalsh(m))[::-1]
    best = lam[:K].sum()
    failures = []

    def check(ok, what):
        print(("ok   " if ok else "FAIL ") + what)
        if not ok:
            failures.append(what)

    results = {}
    for run in j["runs"]:
        b, q = run["blocks"], run["passes"]
        u = np.array(run["basis"]).reshape(D, K)
        ev = np.array(run["eigenvalues"])
        if b == 1:
            t = omega
            for _ in range(q - 1):
                t = top(nystrom(m, t), s)[1]
        else:
            blocks, blk = [omega / np.linalg.norm(omega)], omega
            for _ in range(q - 1):
                blk = m @ blk
                blocks.append(blk / np.linalg.norm(blk))
            t = np.linalg.qr(np.hstack(blocks))[0]
        c_hat = nystrom(m, t)
        w, v = top(c_hat, K)
        name = f"{'krylov' if b > 1 else 'subspace'} q={q}"
        check(abs(run["trace"] - np.trace(m)) <= 1e-12 * np.trace(m), f"{name}: trace is the exact tr(M)")
        check(np.max(np.abs(ev - w)) <= 1e-9 * lam[0], f"{name}: eigenvalues {np.max(np.abs(ev - w)) / lam[0]:.2e} of λ1 from NumPy's")
        proj = np.linalg.norm(u @ u.T - v @ v.T, 2)
        check(proj <= 1e-7, f"{name}: ‖UUᵀ − VVᵀ‖₂ = {proj:.2e} against NumPy's basis")
        r = m - (u * ev) @ u.T
        est = np.sqrt(np.mean(np.sum((r @ g) ** 2, axis=0)))
        true = np.linalg.norm(r)
        check(abs(run["error_estimate"] - est) <= 1e-9 * est, f"{name}: the probes' estimate {run['error_estimate']:.6g} = NumPy's {est:.6g}")
        check(0.5 * true < est < 2.0 * true, f"{name}: estimate {est:.4g} within 2x of the true ‖M − Ĉ_k‖_F {true:.4g}")
        results[(b, q)] = ((best - np.trace(u.T @ m @ u)) / best, run)
    check(results[(1, 1)][1]["basis"] == results[(Q, 1)][1]["basis"], "one pass: block Krylov is subspace iteration, bit for bit")
    for q in range(2, Q + 1):
        e_sub, e_kry = results[(1, q)][0], results[(Q, q)][0]
        check(e_kry < 0.5 * e_sub, f"q={q}: captured-variance error, block Krylov {e_kry:.3e} < half of subspace iteration's {e_sub:.3e}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())

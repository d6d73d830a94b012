"""Summary of a bench/cpu_checks.sh folder: the target table (engine vs the same-run sgemm
reference and vs the PyTorch CPU peer) as Markdown on stdout, and the scaling plot
cpu_scaling.png (GFLOP/s and fraction of the reference over N, 1 and 2 threads) beside the JSON.

    /usr/bin/python3 bench/cpu_report.py OUTDIR
"""
import glob
import json
import os
import sys

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def load(path):
    with open(path) as f:
        return json.load(f)


def ok_rows(doc):
    return [r for r in doc["rows"] if r["backend"] == "cpu" and r["status"] == "ok"]


def torch_best(out, R, N, B, T):
    """Best GFLOP/s of the PyTorch peer over its thread counts, and the thread count."""
    best = None
    for path in glob.glob(os.path.join(out, f"torch_{R}_{N}_{B}_{T}_t*.json")):
        for row in load(path):
            if row.get("agree") and (best is None or row["gflops"] > best[0]):
                best = (row["gflops"], row.get("threads"))
    return best


def summary(out, targets):
    doc = load(targets)
    print(f"CPU: {doc['cpu_model']} ({doc['cpu_isa']}, {doc['cpu_cores']} cores), OpenBLAS core "
          f"{doc['blas_core']}, step products {doc['cpu_step_gemm']}\n")
    print("| R, N, B, T | threads | engine GFLOP/s | sgemm reference GFLOP/s | fraction | "
          "torch GFLOP/s (threads) | engine / torch |")
    print("|---|---|---|---|---|---|---|")
    for r in ok_rows(doc):
        key = (r["R"], r["N"], r["B"], r["T"])
        t = torch_best(out, *key)
        ts = f"{t[0]:.1f} ({t[1]})" if t else "-"
        ratio = f"{r['gflops'] / t[0]:.1f}x" if t else "-"
        print(f"| {', '.join(map(str, key))} | {r['threads']} | {r['gflops']:.1f} | "
              f"{r['reference_gflops']:.1f} | {100 * r['reference_fraction']:.0f} % | {ts} | {ratio} |")


def plot(scaling, png):
    doc = load(scaling)
    rows = ok_rows(doc)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(10, 4))
    for threads, color in ((1, "tab:blue"), (2, "tab:red")):
        rs = sorted((r for r in rows if r["threads"] == threads), key=lambda r: r["N"])
        if not rs:
            continue
        n = [r["N"] for r in rs]
        ax.plot(n, [r["gflops"] for r in rs], "o-", color=color, label=f"engine, {threads} thread(s)")
        ax.plot(n, [r["reference_gflops"] for r in rs], "s--", color=color, alpha=0.6,
                label=f"sgemm N x N by N x B, x {threads}")
        bx.plot(n, [100 * r["reference_fraction"] for r in rs], "o-", color=color, label=f"{threads} thread(s)")
    for a in (ax, bx):
        a.set_xscale("log", base=2)
        a.set_xlabel("N (units)")
        a.grid(True, alpha=0.3)
    ax.set_ylabel("GFLOP/s")
    shape = ", ".join(f"{k} = {'/'.join(sorted({str(r[k]) for r in rows}))}" for k in ("R", "B", "T"))
    ax.set_title(f"{shape}; {doc['cpu_model']} ({doc['cpu_isa']}), {doc['cpu_step_gemm']}", fontsize=9)
    ax.legend(fontsize=8)
    bx.axhline(70, color="gray", ls=":", label="70 % target")
    bx.set_ylabel("engine / same-run sgemm reference (%)")
    bx.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(png, dpi=110)


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else sys.exit(__doc__)
    summary(out, os.path.join(out, "targets.json"))
    plot(os.path.join(out, "scaling.json"), os.path.join(out, "cpu_scaling.png"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""Shared by the PyTorch and JAX peers: reading the engine's peer-input file and reporting."""
import json
import sys

import h5py
import numpy as np

ARRAYS = ("W_free", "W_dale", "a", "W_in", "b", "W_out", "b_out",
          "mask_rec", "mask_in", "mask_out", "col_sign", "leak", "x", "y", "mask", "loss")


def load(path):
    """Returns (arrays, attrs) from a file written by `dalesim bench --export-peers`."""
    with h5py.File(path, "r") as f:
        fmt = f.attrs.get("format")
        if isinstance(fmt, bytes):
            fmt = fmt.decode()
        if fmt != "dalesim-peer-input":
            sys.exit(f"{path}: not a dalesim peer-input file (format = {fmt!r})")
        arrays = {k: np.asarray(f[k][...]) for k in ARRAYS}
        attrs = {k: (v.decode() if isinstance(v, bytes) else v) for k, v in f.attrs.items()}
    return arrays, attrs


def flops_per_iteration(attrs):
    """The engine's fixed count: 6 R B T (N^2 + N (I + O))."""
    R, B, T, N, I, O = (int(attrs[k]) for k in ("R", "B", "T", "N", "I", "O"))
    return 6.0 * R * B * T * (N * N + N * (I + O))


def compare(engine_loss, peer_loss, tol):
    """Max relative difference of the peer's losses [K, R] from the engine's."""
    engine_loss = np.asarray(engine_loss, dtype=np.float64)
    peer_loss = np.asarray(peer_loss, dtype=np.float64)
    rel = np.abs(peer_loss - engine_loss) / np.maximum(np.abs(engine_loss), 1e-12)
    return float(rel.max()), bool(rel.max() <= tol)


def report(rows, json_path):
    for r in rows:
        line = (f"{r['peer']:6s} {r['mode']:7s} {r['device']:24s} "
                f"agree={r['agree']} (max rel diff {r['max_rel_loss_diff']:.2e})")
        if r.get("seconds_per_iter") is not None:
            line += (f"  {r['seconds_per_iter']:.4g} s/iter  {r['seq_steps_per_s']:.4g} seq-steps/s"
                     f"  {r['gflops']:.4g} GFLOP/s")
        print(line)
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rows, f, indent=2)

"""JAX peer: the engine's training iteration as jit(vmap(value_and_grad(scan))) over R replicas,
precision="highest" (strict FP32). Checks its losses against the engine's, then times.

    python3 bench/peers/jax_peer.py PEER_INPUT.h5 [--iterations 20] [--json out.json]
"""
import argparse
import time

import jax
import jax.numpy as jnp
import numpy as np

import peer_common

PARAMS = ("W_free", "W_dale", "a", "W_in", "b", "W_out", "b_out")
STRUCT = ("mask_rec", "mask_in", "mask_out", "col_sign", "leak")


def replica_loss(p, s, x, y, mask):
    """Masked MSE of one replica; x [T, B, I], y and mask [T, B, O]."""
    alpha = jax.nn.sigmoid(p["a"])
    W = (alpha * p["W_dale"] + (1 - alpha) * p["W_free"]) * s["mask_rec"]
    W_in = p["W_in"] * s["mask_in"]
    W_out = p["W_out"] * s["mask_out"]
    B, N = x.shape[1], W.shape[0]

    def step(carry, xt):
        v, r = carry
        u = xt @ W_in.T + r @ W.T + p["b"]
        v = (1 - s["leak"]) * v + s["leak"] * u
        r = jax.nn.relu(v)
        return (v, r), r @ W_out.T + p["b_out"]

    zeros = jnp.zeros((B, N), jnp.float32)
    _, z = jax.lax.scan(step, (zeros, zeros), x)
    return jnp.sum(mask * (z - y) ** 2) / jnp.maximum(jnp.sum(mask), 1.0)


def make_step(hyper):
    lr, lr_alpha, b1, b2, eps, clip = (hyper[k] for k in ("lr", "lr_alpha", "beta1", "beta2", "eps", "clip"))

    def replica_step(p, m, v, steps, s, x, y, mask):
        loss, g = jax.value_and_grad(replica_loss)(p, s, x, y, mask)
        norm = jnp.sqrt(sum(jnp.sum(gi ** 2) for gi in jax.tree_util.tree_leaves(g)))
        scale = jnp.where((clip > 0) & (norm > clip), clip / norm, 1.0)
        steps = steps + 1
        bc1, bc2 = 1 - b1 ** steps, 1 - b2 ** steps
        new_p, new_m, new_v = {}, {}, {}
        for k in PARAMS:
            gk = g[k] * scale
            new_m[k] = b1 * m[k] + (1 - b1) * gk
            new_v[k] = b2 * v[k] + (1 - b2) * gk * gk
            rate = lr_alpha if k == "a" else lr
            new_p[k] = p[k] - rate * (new_m[k] / bc1) / (jnp.sqrt(new_v[k] / bc2) + eps)
        wd = new_p["W_dale"]
        new_p["W_dale"] = jnp.where(wd * s["col_sign"][None, :] < 0, 0.0, wd) * s["mask_rec"]
        new_p["W_free"] = new_p["W_free"] * s["mask_rec"]
        new_p["W_in"] = new_p["W_in"] * s["mask_in"]
        new_p["W_out"] = new_p["W_out"] * s["mask_out"]
        return new_p, new_m, new_v, steps, loss

    batched = jax.vmap(replica_step, in_axes=(0, 0, 0, None, 0, None, None, None))
    return jax.jit(batched)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("input")
    ap.add_argument("--iterations", type=int, default=20)
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--json")
    args = ap.parse_args()
    jax.config.update("jax_default_matmul_precision", "highest")
    arrays, attrs = peer_common.load(args.input)
    hyper = {k: float(attrs[k]) for k in ("lr", "lr_alpha", "beta1", "beta2", "eps", "clip")}
    p = {k: jnp.asarray(arrays[k]) for k in PARAMS}
    s = {k: jnp.asarray(arrays[k]) for k in STRUCT}
    m = {k: jnp.zeros_like(v) for k, v in p.items()}
    v = {k: jnp.zeros_like(x) for k, x in p.items()}
    steps = jnp.zeros((), jnp.float32)
    batches = [tuple(jnp.asarray(arrays[k][i]) for k in ("x", "y", "mask")) for i in range(arrays["x"].shape[0])]
    step = make_step(hyper)
    losses = []
    for b in batches:
        p, m, v, steps, loss = step(p, m, v, steps, s, *b)
        losses.append(np.asarray(loss))
    diff, agree = peer_common.compare(arrays["loss"], np.stack(losses), args.tolerance)
    device = jax.devices()[0]
    row = {"peer": "jax", "mode": "jit", "device": f"{device.platform}:{device.device_kind}", "jax": jax.__version__,
           "agree": agree, "max_rel_loss_diff": diff}
    jax.block_until_ready(p)
    t0 = time.perf_counter()
    for i in range(args.iterations):
        p, m, v, steps, loss = step(p, m, v, steps, s, *batches[i % len(batches)])
    jax.block_until_ready(loss)
    sec = (time.perf_counter() - t0) / args.iterations
    seq = int(attrs["R"]) * int(attrs["B"]) * int(attrs["T"])
    row.update(seconds_per_iter=sec, seq_steps_per_s=seq / sec,
               gflops=peer_common.flops_per_iteration(attrs) / sec / 1e9)
    peer_common.report([row], args.json)
    return 0 if agree else 1


if __name__ == "__main__":
    raise SystemExit(main())

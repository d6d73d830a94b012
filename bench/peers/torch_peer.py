"""PyTorch peer: the engine's training iteration for R stacked `mix` replicas (bmm), eager and as
one CUDA graph. Checks its losses against the engine's, then times.

    python3 bench/peers/torch_peer.py PEER_INPUT.h5 [--device cuda] [--iterations 20] [--threads N] [--json out.json]
"""
import argparse
import time

import numpy as np
import torch

import peer_common

PARAMS = ("W_free", "W_dale", "a", "W_in", "b", "W_out", "b_out")


class Peer:
    def __init__(self, arrays, attrs, device):
        t = lambda k: torch.tensor(arrays[k], dtype=torch.float32, device=device)
        self.p = {k: t(k).requires_grad_(True) for k in PARAMS}
        self.mask_rec, self.mask_in, self.mask_out = t("mask_rec"), t("mask_in"), t("mask_out")
        self.col_sign = t("col_sign")                  # [R, N]
        self.leak = t("leak")[:, None, :]               # [R, 1, N]
        self.m = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.v = {k: torch.zeros_like(v) for k, v in self.p.items()}
        self.lr, self.lr_alpha = float(attrs["lr"]), float(attrs["lr_alpha"])
        self.b1, self.b2, self.eps = float(attrs["beta1"]), float(attrs["beta2"]), float(attrs["eps"])
        self.clip = float(attrs["clip"])
        self.steps = torch.zeros((), device=device)

    def losses(self, x, y, mask):
        """Masked MSE per replica [R]; x [T, B, I], y and mask [T, B, O] shared by all replicas."""
        p = self.p
        alpha = torch.sigmoid(p["a"])[:, None, None]
        W = (alpha * p["W_dale"] + (1 - alpha) * p["W_free"]) * self.mask_rec   # [R, N, N]
        W_in = p["W_in"] * self.mask_in                                          # [R, N, I]
        W_out = p["W_out"] * self.mask_out                                       # [R, O, N]
        R, N = W.shape[0], W.shape[1]
        T, B = x.shape[0], x.shape[1]
        v = torch.zeros(R, B, N, device=x.device)
        r = torch.zeros(R, B, N, device=x.device)
        sq = torch.zeros(R, device=x.device)
        for t in range(T):
            u = torch.matmul(x[t], W_in.transpose(1, 2)) + torch.bmm(r, W.transpose(1, 2)) + p["b"][:, None, :]
            v = (1 - self.leak) * v + self.leak * u
            r = torch.relu(v)
            z = torch.bmm(r, W_out.transpose(1, 2)) + p["b_out"][:, None, :]
            sq = sq + (mask[t] * (z - y[t]) ** 2).sum(dim=(1, 2))
        return sq / mask.sum().clamp(min=1.0)

    def step(self, x, y, mask):
        """One iteration; returns the losses measured before the update."""
        loss = self.losses(x, y, mask)
        grads = torch.autograd.grad(loss.sum(), list(self.p.values()))
        with torch.no_grad():
            sq = sum(g.reshape(g.shape[0], -1).pow(2).sum(dim=1) for g in grads)
            norm = sq.sqrt()
            scale = torch.where((self.clip > 0) & (norm > self.clip), self.clip / norm, torch.ones_like(norm))
            self.steps += 1
            bc1, bc2 = 1 - self.b1 ** self.steps, 1 - self.b2 ** self.steps
            for (k, w), g in zip(self.p.items(), grads):
                g = g * scale.reshape((-1,) + (1,) * (g.dim() - 1))
                self.m[k].mul_(self.b1).add_((1 - self.b1) * g)
                self.v[k].mul_(self.b2).add_((1 - self.b2) * g * g)
                lr = self.lr_alpha if k == "a" else self.lr
                w.sub_(lr * (self.m[k] / bc1) / ((self.v[k] / bc2).sqrt() + self.eps))
            # Constraints: Dale projection of W_dale, masks.
            wd = self.p["W_dale"]
            wd.mul_((wd * self.col_sign[:, None, :] >= 0).float()).mul_(self.mask_rec)
            self.p["W_free"].mul_(self.mask_rec)
            self.p["W_in"].mul_(self.mask_in)
            self.p["W_out"].mul_(self.mask_out)
        return loss.detach()


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("input")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--iterations", type=int, default=20, help="timed iterations")
    ap.add_argument("--tolerance", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=0, help="CPU threads for torch (0: torch's default)")
    ap.add_argument("--json")
    args = ap.parse_args()
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    torch.backends.cuda.matmul.allow_tf32 = False  # strict FP32, as the engine
    torch.backends.cudnn.allow_tf32 = False
    arrays, attrs = peer_common.load(args.input)
    dev = torch.device(args.device)
    batches = [tuple(torch.tensor(arrays[k][i], device=dev) for k in ("x", "y", "mask"))
               for i in range(arrays["x"].shape[0])]
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else "cpu"
    sync = torch.cuda.synchronize if dev.type == "cuda" else (lambda: None)
    flops = peer_common.flops_per_iteration(attrs)
    seq = int(attrs["R"]) * int(attrs["B"]) * int(attrs["T"])
    rows = []

    modes = ["eager"] + (["graph"] if dev.type == "cuda" else [])
    for mode in modes:
        peer = Peer(arrays, attrs, dev)
        if mode == "eager":
            run = peer.step
        else:
            static = [torch.empty_like(t) for t in batches[0]]
            side = torch.cuda.Stream()
            side.wait_stream(torch.cuda.current_stream())
            # Warm-up on a throwaway copy so that the checked trajectory starts from the initial weights.
            warm = Peer(arrays, attrs, dev)
            with torch.cuda.stream(side):
                for _ in range(3):
                    warm.step(*batches[0])
            torch.cuda.current_stream().wait_stream(side)
            graph = torch.cuda.CUDAGraph()
            for s, t in zip(static, batches[0]):
                s.copy_(t)
            with torch.cuda.graph(graph):
                out = peer.step(*static)
            # Capture ran the kernels once without executing; reset the state it may have touched.
            fresh = Peer(arrays, attrs, dev)
            with torch.no_grad():
                for k in PARAMS:
                    peer.p[k].copy_(fresh.p[k])
                    peer.m[k].zero_()
                    peer.v[k].zero_()
                peer.steps.zero_()

            def run(x, y, mask):
                static[0].copy_(x)
                static[1].copy_(y)
                static[2].copy_(mask)
                graph.replay()
                return out.clone()
        losses = [run(*b).cpu().numpy() for b in batches]
        diff, agree = peer_common.compare(arrays["loss"], np.stack(losses), args.tolerance)
        row = {"peer": "torch", "mode": mode, "device": device_name, "torch": torch.__version__,
               "threads": torch.get_num_threads() if dev.type == "cpu" else None,
               "agree": agree, "max_rel_loss_diff": diff}
        sync()
        t0 = time.perf_counter()
        for i in range(args.iterations):
            run(*batches[i % len(batches)])
        sync()
        sec = (time.perf_counter() - t0) / args.iterations
        row.update(seconds_per_iter=sec, seq_steps_per_s=seq / sec, gflops=flops / sec / 1e9)
        rows.append(row)
    peer_common.report(rows, args.json)
    return 0 if all(r["agree"] for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())

"""How far the compressed completion step is from this machine's limits, measured in one run.

    python bench/completion_roofline.py --out nbs/results/03_completion/roofline.json

In one process, one after the other: the machine's two peaks (a streaming copy of 256 MiB, read + write bytes per
second; a float64 1024 x 1024 matrix product, floating-point operations per second), on one thread and on all;
then the fused kernel's step at the paper's setting (d = 1000, r = 5, 20% observed, depth 3, width 10), on one thread
and on all. The work of one step is counted from the problem's sizes (below); the fraction of each peak the step
reaches says which limit, if any, it is near. Last, on one thread, where a step's time goes: one pass of the kernel
over the entries as a step makes it (residuals, G right and G^T A), the same pass without G^T A (its read-modify-write
of a row per entry), and the rest of the step (the step's time less the pass: the cores and the factor updates),
each timed from the same state, alternated, the best of five rounds.

Work per step, for nnz observed entries, an m x n matrix, width w (the kernel's loops, fused_step.cpp):
  flops: per entry 6w (the residual's dot product, G right and G^T A); per row 6w^2 (left M, left^T G right, the
  left update); per column 2w (the right update): 6w nnz + 6w^2 m + 2w n.
  bytes that must come from memory (right, scatter and the cores stay in cache at this size): per entry 12 (column
  index, value); per row 8 w x 4 (left and G right, each read and written) + 8 (row pointer): 12 nnz + (32w + 8) m.
"""
import argparse, json, math, os, time
import torch
from deeplora_nb.completion import CompletionProblem, train_completion
from deeplora_nb.completion.kernels import FusedChain, _pass_over_entries, fused_kernel


def best_of(fn, repeats=5) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter(); fn(); times.append(time.perf_counter() - start)
    return min(times)


def peaks(threads: int) -> dict:
    torch.set_num_threads(threads)
    src = torch.rand(2 ** 25, dtype=torch.float64); dst = torch.empty_like(src)
    copy = best_of(lambda: dst.copy_(src))
    a, b = torch.rand(1024, 1024, dtype=torch.float64), torch.rand(1024, 1024, dtype=torch.float64)
    matmul = best_of(lambda: a @ b)
    return dict(bandwidth_gb_s=2 * src.numel() * 8 / copy / 1e9, gflop_s=2 * 1024 ** 3 / matmul / 1e9)


def step(problem, threads: int, steps: int) -> dict:
    torch.set_num_threads(threads)
    r = train_completion(problem, "compressed", width=10, lr=5e3, tol=0.0, max_steps=steps, log_every=steps,
                         progress=False, kernel="fused")
    return dict(seconds_per_step=r.config["kernel_seconds"] / r.steps, steps=r.steps)


def breakdown(problem, w: int, depth: int = 3, repeats: int = 200, rounds: int = 5) -> dict:
    """Seconds of a whole step and of one pass over the entries with and without G^T A, on one thread: `repeats` of
    each, alternated for `rounds` rounds from the same state, the best round of each (the machine's speed drifts)."""
    torch.set_num_threads(1)
    (m, n), g = problem.shape, torch.Generator().manual_seed(0)
    right, left = (torch.randn(k, w, dtype=torch.float64, generator=g) / w ** 0.5 for k in (n, m))
    cores = [torch.eye(w, dtype=torch.float64) for _ in range(depth - 2)]
    chain = FusedChain(right, cores, left, problem, 1.0 / problem.num_observed, 1.0, 0.01, fused_kernel(), parts=1)
    state = (chain.right, chain.stacked, chain.left)  # what a step changes in place
    start = [t.clone() for t in state]
    GR, K, scatter = torch.empty(m, w, dtype=torch.float64), torch.empty(w, w, dtype=torch.float64), torch.empty(n, w, dtype=torch.float64)
    M = torch.eye(w, dtype=torch.float64)
    def steps(): assert chain._call(repeats, 1, 0.0, math.inf)[0] == repeats
    def passes(out):
        for _ in range(repeats): _pass_over_entries(chain, M, GR, K, out)
    timed = dict(step=steps, pass_over_entries=lambda: passes(scatter), pass_without_scatter=lambda: passes(None))
    best = dict.fromkeys(timed, math.inf)
    for _ in range(rounds):
        for name, fn in timed.items():
            for t, s in zip(state, start): t.copy_(s)  # every timing from the same state
            best[name] = min(best[name], best_of(fn, 1))
    seconds = {name: t / repeats for name, t in best.items()}
    return dict(seconds, rest_of_step=seconds['step'] - seconds['pass_over_entries'],
                ns_per_entry=seconds['pass_over_entries'] / problem.num_observed * 1e9)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=3000)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    cores = os.cpu_count()
    problem = CompletionProblem.random(1000, 1000, 5, 0.2, seed=0)
    m, n, nnz, w = 1000, 1000, problem.num_observed, 10
    flops, bytes_ = 6 * w * nnz + 6 * w * w * m + 2 * w * n, 12 * nnz + (32 * w + 8) * m
    report = dict(setting=dict(d=1000, rank=5, observed=0.2, width=w, nnz=nnz), flops_per_step=flops,
                  bytes_per_step=bytes_, load_average_before=os.getloadavg(), runs={})
    for threads in sorted({1, cores}):
        peak, s = peaks(threads), step(problem, threads, args.steps)
        achieved = dict(gflop_s=flops / s["seconds_per_step"] / 1e9, bandwidth_gb_s=bytes_ / s["seconds_per_step"] / 1e9)
        report["runs"][threads] = dict(peak=peak, step=s, achieved=achieved,
                                       fraction=dict(flops=achieved["gflop_s"] / peak["gflop_s"],
                                                     bandwidth=achieved["bandwidth_gb_s"] / peak["bandwidth_gb_s"]))
        print(threads, "thread(s):", json.dumps(report["runs"][threads]), flush=True)
    report["one_thread_breakdown"] = breakdown(problem, w)
    print("one thread:", json.dumps(report["one_thread_breakdown"]), flush=True)
    report["load_average_after"] = os.getloadavg()
    if args.out:
        with open(args.out, "w") as f: json.dump(report, f, indent=1)


if __name__ == "__main__":
    main()

"""Compressed deep matrix completion past what the dense network can allocate (default: 50,000 x 50,000, rank 5, 0.2% observed).

    python bench/bench_completion_scale.py [--d 50000] [--observed 0.002] [--out nbs/results/03_completion/scale_50k.json]
    python bench/bench_completion_scale.py --d 100000 --observed 0.001 --out nbs/results/03_completion/scale_100k.json

Matrix-free construction (a structured random orthogonal start, never formed), then the fused kernel over the observed
entries only, on all cores (torch's thread count). Reports time, iterations, peak resident memory of this process
(getrusage) and the memory the full (dense) network would need (computed, not run). In the same process, before
the large run, it times the paper's d = 1000 problem (r = 5, 20%, lr 5e3) for 2,000 steps with the same logging
interval, and again after it, so that the cost per observed entry of the two is compared side by side (the
reference cost is the mean of the two, which brackets the large run on a machine whose load drifts). The cost
compared is the time inside the fused kernel; the history rows (errors from torch kernels every --log-every steps)
are reported on top.
"""
import argparse, json, os, resource, time
import torch
from deeplora_nb.completion import CompletionProblem, train_completion

def rss_mb(): return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB

def ns_per_entry(result, problem, key='kernel_seconds'):
    "Nanoseconds per observed entry per step: inside the fused kernel (key='kernel_seconds'), or of the whole run ('seconds')."
    seconds = result.config[key] if key in result.config else result.seconds
    return 1e9 * seconds / max(result.steps, 1) / problem.num_observed

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--d', type=int, default=50_000)
    ap.add_argument('--rank', type=int, default=5)
    ap.add_argument('--observed', type=float, default=0.002)
    ap.add_argument('--depth', type=int, default=3)
    ap.add_argument('--eps', type=float, default=0.1)
    ap.add_argument('--relative-tol', type=float, default=1e-10, help='stop when train loss < this times the initial train loss')
    ap.add_argument('--max-steps', type=int, default=3000)
    ap.add_argument('--log-every', type=int, default=50)
    ap.add_argument('--threads', type=int, default=None, help="default: torch's (all cores)")
    ap.add_argument('--kernel', choices=['fused', 'torch'], default=None)
    ap.add_argument('--out', default='nbs/results/03_completion/scale_50k.json')
    args = ap.parse_args()
    if not os.path.isdir(os.path.dirname(os.path.abspath(args.out))): ap.error(f"--out {args.out}: its folder does not exist")
    if args.threads: torch.set_num_threads(args.threads)
    reference_problem = CompletionProblem.random(1000, 1000, 5, 0.2, seed=0)
    def time_reference():
        reference = train_completion(reference_problem, 'compressed', lr=5e3, max_steps=2000, log_every=args.log_every,
                                     progress=False, kernel=args.kernel)
        print(f"d=1000 reference: {1e3 * reference.seconds / reference.steps:.3f} ms/iteration with the history rows, "
              f"{ns_per_entry(reference, reference_problem):.2f} ns per observed entry in the kernel", flush=True)
        return reference
    before = time_reference()
    d, start = args.d, time.perf_counter()
    problem = CompletionProblem.random(d, d, args.rank, args.observed, seed=0)
    make_seconds, after_problem = time.perf_counter() - start, rss_mb()
    print(problem, f'built in {make_seconds:.1f} s, peak RSS {after_problem:.0f} MB', flush=True)
    initial = 0.5 * problem.values.square().sum().item() / (d * d)  # train loss at X = 0 (mean units)
    result = train_completion(problem, 'compressed', depth=args.depth, eps=args.eps, tol=args.relative_tol * initial,
                              max_steps=args.max_steps, log_every=args.log_every, progress=False, kernel=args.kernel)
    s, big_ns, big_run_ns = result.summary(), ns_per_entry(result, problem), ns_per_entry(result, problem, 'seconds')
    after = time_reference()
    reference_ns = (ns_per_entry(before, reference_problem) + ns_per_entry(after, reference_problem)) / 2
    reference = before
    print(f"{s['steps']} iterations, converged {s['converged']}, {s['seconds']:.0f} s ({s['ms_per_step']:.1f} ms/iteration, "
          f"{big_run_ns:.2f} ns per observed entry with the history rows; in the kernel {big_ns:.2f} ns = {big_ns / reference_ns:.2f}x the d=1000 cost), setup {result.setup_seconds:.1f} s, "
          f"relative error {s['relative_error']:.2e}, peak RSS {rss_mb():.0f} MB", flush=True)
    gib = 2 ** 30
    dense = dict(parameters_gib=args.depth * d * d * 8 / gib,
                 training_step_gib=(2 * args.depth + 2) * d * d * 8 / gib)  # factors + gradients + product X + dense gradient G
    out = dict(setting=vars(args), problem=repr(problem), problem_seconds=make_seconds, summary=s, setup_seconds=result.setup_seconds,
               history=result.history, config=result.config, peak_rss_mb=rss_mb(), rss_after_problem_mb=after_problem,
               ns_per_entry=big_ns, ns_per_entry_with_history=big_run_ns, reference=dict(summary=reference.summary(), config=reference.config, ns_per_entry=reference_ns,
                                                   ns_per_entry_before=ns_per_entry(before, reference_problem),
                                                   ns_per_entry_after=ns_per_entry(after, reference_problem)),
               cost_ratio_vs_d1000=big_ns / reference_ns, compressed_parameters=sum(t.numel() for t in result.factors),
               dense_full=dense, torch=torch.__version__, torch_threads=torch.get_num_threads(), load_average=os.getloadavg())
    with open(args.out, 'w') as f: json.dump(out, f, indent=1)
    print(f"the full network would need {dense['parameters_gib']:.0f} GiB for its parameters alone, "
          f"~{dense['training_step_gib']:.0f} GiB for a gradient step; written {args.out}")

if __name__ == '__main__': main()

"""Completion on a CUDA GPU, checked against the CPU and timed: one prepared script for a session lent a GPU.

    python bench/gpu_check.py --out gpu_check.json                       # on a CUDA machine (a few minutes on an H100)
    python bench/gpu_check.py --device cpu --sizes 300 --check-d 120     # a smoke test of the script itself, on a CPU

1. The same float64 problem (d = --check-d, rank 5, 20% observed, the paper's lr scaled to its size) is trained by the
   compressed network on the CPU (torch kernels, so both sides run the same arithmetic) and on --device for
   --check-steps steps from the same start; the train loss at every logged step and the final completed matrix must
   agree to --rtol relative (1e-10 by default).
2. The compressed network is timed on --device at each of --sizes (the paper's problem at d = 1000, then larger
   ones, 0.2% / 0.1% observed past 10,000), at the package's default lr, to the tolerance or --max-steps: seconds, iterations, ms per step, peak memory.
Prints one JSON document (and writes it to --out): the device's name, torch and CUDA versions, and every number.
The authors' JAX code is timed beside it by bench/bench_vs_authors.py where JAX with CUDA is installed.
"""
import argparse, json, time
import torch
from deeplora_nb.completion import CompletionProblem, train_completion


def observed_fraction(d: int) -> float: return 0.2 if d <= 2000 else (0.002 if d <= 50_000 else 0.001)


def agreement(device: str, d: int, steps: int, rtol: float) -> dict:
    "The CPU and `device` runs of one problem from one start: the largest relative gaps of the losses and the matrix."
    problem = CompletionProblem.random(d, d, 5, 0.2, seed=0)
    runs = {where: train_completion(problem, "compressed", kernel="torch", device=where, max_steps=steps, tol=0.0,
                                    log_every=max(1, steps // 20), progress=False, seed=0)
            for where in ("cpu", device)}
    cpu, other = runs["cpu"], runs[device]
    losses = (torch.tensor(cpu.history["train_loss"], dtype=torch.float64),
              torch.tensor(other.history["train_loss"], dtype=torch.float64))
    loss_gap = ((losses[0] - losses[1]).abs() / losses[0].abs().clamp_min(1e-300)).max().item()
    X, Y = cpu.completed(), other.completed().cpu()
    matrix_gap = ((X - Y).norm() / X.norm()).item()
    return dict(d=d, steps=steps, loss_gap=loss_gap, matrix_gap=matrix_gap, agree=max(loss_gap, matrix_gap) <= rtol)


def timing(device: str, d: int, max_steps: int) -> dict:
    "The compressed network on `device` at size d: seconds, iterations, ms per step, peak device memory."
    observed = observed_fraction(d)
    problem = CompletionProblem.random(d, d, 5, observed, seed=0)
    if device.startswith("cuda"): torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    result = train_completion(problem, "compressed", device=device, max_steps=max_steps, progress=False, log_every=100)
    seconds = time.perf_counter() - start
    peak = torch.cuda.max_memory_allocated() / 2 ** 30 if device.startswith("cuda") else None
    return dict(d=d, observed=observed, steps=result.steps, converged=result.converged, seconds=seconds,
                ms_per_step=1e3 * seconds / max(result.steps, 1), peak_gib=peak, relative_error=result.final.get("relative_error"))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda")
    p.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    p.add_argument("--check-d", type=int, default=1000)
    p.add_argument("--check-steps", type=int, default=2000)
    p.add_argument("--rtol", type=float, default=1e-10)
    p.add_argument("--max-steps", type=int, default=30_000)
    p.add_argument("--out", default=None)
    args = p.parse_args()
    report = dict(device=torch.cuda.get_device_name() if args.device.startswith("cuda") else args.device,
                  torch=torch.__version__, cuda=torch.version.cuda)
    report["agreement"] = agreement(args.device, args.check_d, args.check_steps, args.rtol)
    print(json.dumps(report["agreement"]), flush=True)
    report["timings"] = []
    for d in args.sizes:
        report["timings"].append(timing(args.device, d, args.max_steps))
        print(json.dumps(report["timings"][-1]), flush=True)
    if args.out:
        with open(args.out, "w") as f: json.dump(report, f, indent=1)
    if not report["agreement"]["agree"]: raise SystemExit(f"the {args.device} run does not match the CPU run to {args.rtol}")


if __name__ == "__main__":
    main()

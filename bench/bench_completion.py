"""Benchmark deep matrix completion: compressed vs full at the paper's setting, cost per step vs |Omega|, peak memory.

    python bench/bench_completion.py [--threads N] [--quick] [--out nbs/results/03_completion/bench_completion.json]

Everything is measured side by side in one run, so ratios are meaningful on a busy machine.
Setting (the paper's): d = 1000, r = 5, 20% observed, L = 3, eps = 1e-3, lr = 5e3 (mean-loss units),
gamma = 0.01, stop when the train loss < 1e-13 (mean units), float64.
The full network is run for a few steps only; its time to converge is its per-step time times the
compressed run's iteration count (the trajectories coincide; the script checks them over the steps it runs).
"""
import argparse, json, os, platform, resource, subprocess, sys, time
import torch
import math
from deeplora_nb.completion import (CompletionProblem, train_completion, loss_scale, fused_kernel,
                                    SparseChain, FusedChain, DenseChain)
from deeplora_nb.factorization import scaled_orthogonal_init, prefix_products, factor_gradients

SETTING = dict(d=1000, rank=5, observed=0.2, depth=3, eps=1e-3, lr=5e3, gamma=0.01, tol=1e-13)

def machine():
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    return dict(cpu=cpu, logical_cpus=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads(),
                python=platform.python_version(), load_average=os.getloadavg())

def per_step_seconds(model, steps, warmup=2):
    "Seconds per step over `steps` steps, the loss checked every 10 (the trainer's default for the torch kernels)."
    model.advance(warmup, 0.0, math.inf, 10)
    start = time.perf_counter()
    model.advance(steps, 0.0, math.inf, 10)
    return (time.perf_counter() - start) / steps

class DenseResidualCompressed(SparseChain):
    "The compressed network as the authors' code computes it: the dense product X, a masked dense residual and dense gradients."
    def __init__(self, *args):
        super().__init__(*args)
        m, n = self.problem.shape
        self.mask = torch.zeros(m, n, dtype=self.problem.dtype); self.target = torch.zeros_like(self.mask)
        self.mask[self.problem.rows, self.problem.cols] = 1; self.target[self.problem.rows, self.problem.cols] = self.problem.values
    def residual(self):
        prefixes = prefix_products(self.cores)
        M = prefixes[-1]
        A = self.left @ M
        return A, M, prefixes, self.scale * self.mask * (A @ self.right.T - self.target)
    def step(self, state):
        A, M, prefixes, G = state
        GR, GtA = G @ self.right, G.T @ A
        grads = factor_gradients(self.cores, self.left.T @ GR, prefixes=prefixes, check=False)
        self.left.sub_(GR @ M.T, alpha=self.lr_outer); self.right.sub_(GtA, alpha=self.lr_outer)
        for C, g in zip(self.cores, grads): C.sub_(g, alpha=self.lr)
    def loss_sum(self, state): return state[-1].square().sum() / self.scale ** 2

def compressed_start(problem, seed=0, matrix_free=False):
    "The compressed network at its start, as the trainer builds it: `train_completion` taking no step."
    s = SETTING
    return train_completion(problem, 'compressed', depth=s['depth'], width=2 * s['rank'], eps=s['eps'], lr=s['lr'],
                            gamma=s['gamma'], max_steps=0, seed=seed, matrix_free=matrix_free, kernel='torch',
                            progress=False).model

def compressed_chain(problem, cls=FusedChain, seed=0, matrix_free=False):
    s = SETTING; scale = loss_scale(problem, 'mean')
    cf = compressed_start(problem, seed, matrix_free=matrix_free)
    extra = (fused_kernel(),) if cls is FusedChain else ()
    return cls(cf.right, cf.cores, cf.left, problem, scale, s['lr'], s['gamma'] * s['lr'], *extra)

def full_chain(problem, seed=0):
    s = SETTING; m, n = problem.shape
    W = scaled_orthogonal_init(m, n, min(m, n), s['depth'], s['eps'], generator=torch.Generator().manual_seed(seed))
    return DenseChain(W, problem, loss_scale(problem, 'mean'), s['lr'])

def _rss(field):
    return next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith(field)) / 1024  # MiB

def _reset_peak():
    with open('/proc/self/clear_refs', 'w') as f: f.write('5')  # Linux: the peak-RSS mark restarts from the current RSS
    return _rss('VmRSS')

def worker(kind, path):
    "Run in a fresh process: peak resident memory of building one model and of training it, on a saved problem."
    torch.set_num_threads(1)
    problem = CompletionProblem(**torch.load(path))
    base = _reset_peak()
    model = {'compressed': lambda: compressed_chain(problem), 'compressed_matrix_free': lambda: compressed_chain(problem, matrix_free=True),
             'full': lambda: full_chain(problem)}[kind]()
    setup_peak = _rss('VmHWM') - base
    base_train = _reset_peak()
    model.advance(3, 0.0, math.inf, 1)
    print(json.dumps(dict(kind=kind, setup_peak_mb=setup_peak, training_peak_mb=_rss('VmHWM') - base_train,
                          process_peak_mb=_rss('VmHWM'), model_resident_mb=base_train - base)))

def measure_memory(problem):
    import tempfile
    out = {}
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, 'problem.pt')
        torch.save(dict(rows=problem.rows, cols=problem.cols, values=problem.values, shape=problem.shape, truth=problem.truth), path)
        for kind in ('compressed', 'compressed_matrix_free', 'full'):
            res = subprocess.run([sys.executable, __file__, '--worker', kind, path], capture_output=True, text=True, check=True)
            out[kind] = json.loads(res.stdout.strip().splitlines()[-1])
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--threads', type=int, default=None, help="default: torch's (all cores)")
    ap.add_argument('--quick', action='store_true', help='stop the compressed run early (CI smoke test)')
    ap.add_argument('--full-steps', type=int, default=10)
    ap.add_argument('--out', default='nbs/results/03_completion/bench_completion.json')
    ap.add_argument('--worker', nargs=2, default=None)
    args = ap.parse_args()
    if args.worker: return worker(*args.worker)
    if args.threads: torch.set_num_threads(args.threads)
    s, report = SETTING, {'machine': machine(), 'setting': SETTING}
    print('machine:', report['machine'])
    problem = CompletionProblem.random(s['d'], s['d'], s['rank'], s['observed'], seed=0)

    # 1. time to converge: compressed run to tol; full per step, checked against the compressed trajectory
    max_steps = 2000 if args.quick else 100_000
    comp = train_completion(problem, 'compressed', depth=s['depth'], eps=s['eps'], lr=s['lr'], gamma=s['gamma'], tol=s['tol'],
                            max_steps=max_steps, device='cpu', log_every=1000, progress=False, matrix_free=False)
    summary = comp.summary()
    print(f"compressed (kernel={comp.config['kernel']}): {comp.steps} iterations, {comp.seconds:.1f} s ({summary['ms_per_step']:.2f} ms/iteration), "
          f"recovery error {summary['recovery_error']:.2e}, setup {comp.setup_seconds:.2f} s")
    full, dense_res = full_chain(problem), compressed_chain(problem, DenseResidualCompressed)
    full_step = per_step_seconds(full, args.full_steps)
    # trajectory check over the same number of steps from the same start
    check = compressed_chain(problem)
    check.advance(args.full_steps + 2, 0.0, math.inf, 1)
    traj_gap = abs(full.loss_sum(full.residual()).item() - check.loss_sum(check.residual()).item()) / check.loss_sum(check.residual()).item()
    fused_step = per_step_seconds(compressed_chain(problem), 2000)
    torch_step = per_step_seconds(compressed_chain(problem, SparseChain), 200)
    dense_step = per_step_seconds(dense_res, 50)
    report['convergence'] = dict(compressed=dict(summary, kernel=comp.config['kernel']), compressed_ms_per_step_fused=1e3 * fused_step,
                                 compressed_ms_per_step_torch=1e3 * torch_step,
                                 compressed_dense_residual_ms_per_step=1e3 * dense_step,
                                 speedup_per_step_fused_vs_torch=torch_step / fused_step,
                                 full_ms_per_step=1e3 * full_step, full_steps_timed=args.full_steps,
                                 full_seconds_extrapolated=full_step * comp.steps,
                                 speedup_vs_full=full_step * comp.steps / comp.seconds,
                                 speedup_per_step_vs_full=full_step / fused_step,
                                 speedup_per_step_vs_dense_residual=dense_step / fused_step,
                                 trajectory_relative_gap=traj_gap)
    c = report['convergence']
    print(f"full: {1e3 * full_step:.1f} ms/iteration -> {c['full_seconds_extrapolated']:.0f} s for {comp.steps} iterations "
          f"(extrapolated); speedup {c['speedup_vs_full']:.0f}x (per step {c['speedup_per_step_vs_full']:.0f}x); "
          f"train loss gap after {args.full_steps + 2} steps {traj_gap:.1e}")
    print(f"compressed per step: fused kernel {1e3 * fused_step:.3f} ms, torch kernels {1e3 * torch_step:.2f} ms "
          f"({c['speedup_per_step_fused_vs_torch']:.1f}x), dense residual (the authors' formulation in torch) {1e3 * dense_step:.2f} ms")

    # 2. per-step cost against |Omega| (compressed, width 10)
    rows = []
    for d, p in [(1000, 0.025), (1000, 0.05), (1000, 0.1), (1000, 0.2), (1000, 0.4), (4000, 0.0125), (4000, 0.025)]:
        prob = CompletionProblem.random(d, d, s['rank'], p, seed=1)
        chain = FusedChain(*_narrow_start(prob), prob, loss_scale(prob, 'mean'), s['lr'], s['gamma'] * s['lr'], fused_kernel())
        t = per_step_seconds(chain, 200)
        rows.append(dict(d=d, observed_fraction=p, num_observed=prob.num_observed, ms_per_step=1e3 * t, ns_per_entry=1e9 * t / prob.num_observed))
        print(f"d={d:5d} p={p:<6} |Omega|={prob.num_observed:>9,}: {1e3 * t:7.2f} ms/step, {1e9 * t / prob.num_observed:6.1f} ns per observed entry")
    xs = [math.log(r['num_observed']) for r in rows]; ys = [math.log(r['ms_per_step']) for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sum((x - mx) ** 2 for x in xs)
    report['scaling'] = dict(rows=rows, loglog_slope=slope)
    print(f"log-log slope of time per step against |Omega|: {slope:.2f} (1 = linear)")

    # 3. peak memory (fresh processes)
    mem = measure_memory(problem)
    report['memory'] = dict(per_process=mem, full_parameters_mb=s['depth'] * s['d'] ** 2 * 8 / 2 ** 20)
    for kind, v in mem.items():
        print(f"{kind:>10}: building the model peaks at +{v['setup_peak_mb']:.1f} MiB, it keeps {v['model_resident_mb']:.1f} MiB, "
              f"a training step peaks at +{v['training_peak_mb']:.1f} MiB")
    report['machine']['load_average_end'] = os.getloadavg()
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, 'w') as f: json.dump(report, f, indent=1)
    print('written', args.out)

def _narrow_start(problem, width=10):
    "A compressed-shaped start (right, cores, left) of the given width for timing: cost does not depend on the values."
    m, n = problem.shape
    W = scaled_orthogonal_init(m, n, width, 5, 1e-3, generator=torch.Generator().manual_seed(0))
    return W[0].T, W[1:-1], W[-1]

if __name__ == '__main__': main()

"""Compressed deep matrix completion side by side with the authors' JAX code (cjyaras/law-of-parsimony), in one run.

    python bench/bench_vs_authors.py --peer-src DIR --peer-python PYTHON [--repeats 2] [--sizes 300 1000]
                                     [--busy 2] [--pause-pids FILE] [--out nbs/results/03_completion/bench_vs_authors_1.json]

DIR is a clone of https://github.com/cjyaras/law-of-parsimony and PYTHON an interpreter with jax, optax and tqdm
(`python -m venv jaxvenv && jaxvenv/bin/pip install jax optax tqdm`). Their code runs unmodified, imported from DIR,
in its own process, exactly as their notebook fig_compare_iteration_time.ipynb calls it: `init_net` (width d),
`compute_factor`, `compress_network`, `train` (100 jitted gradient steps per call, train and test loss every 100),
with `dlr` = gamma. Both sides train on the same matrix and mask (ours generated, theirs given as target and mask);
ours runs `train_completion(problem, 'compressed', ...)` at its defaults otherwise (the fused kernel, all cores).
Runs alternate (ours, theirs; the order flips every repeat), each in a fresh process. Without --peer-src it times
ours alone and prints how to add the authors' code.

With --busy N everything runs twice: on the machine as it is ('quiet'), then with N busy-looping processes started
for the duration ('busy'), and the table gives the ratios of both. Ours also runs on one thread and on all threads
(fixed), so that the default (which picks between them as it runs) is compared with the better of the two in the
same conditions; and one thread runs a second time, next to the first, so that the spread of one configuration run
twice in those conditions (the noise floor of that comparison) is measured too. --pause-pids stops the processes
listed in FILE (SIGSTOP) while the benchmark runs, and resumes them after, so that background jobs do not make the
'quiet' runs busy.

Times: 'seconds' is each side's own training clock (ours: `CompletionResult.seconds`; theirs: the last entry of
their `time` list, which includes the JIT compilation of their loop); 'setup' is building the compressed network
(ours: `setup_seconds`; theirs: `init_net` + `compute_factor` + `compress_network`).
"""
import argparse, json, os, platform, signal, subprocess, sys, tempfile, time

SETTINGS = {300: dict(lr=1e3), 1000: dict(lr=5e3)}  # the authors' step sizes (mean-loss units) at these sizes
COMMON = dict(rank=5, observed=0.2, depth=3, eps=1e-3, gamma=0.01, tol=1e-13, seed=0)

PEER_WORKER = r'''
import json, sys, time
src, data, d, rank, depth, eps, lr, gamma, tol, seed = sys.argv[1:]
sys.path.insert(0, src)
from jax import config
config.update("jax_enable_x64", True)
import jax, numpy as np, jax.numpy as jnp
from jax.random import PRNGKey
from loss import create_loss
from network import init_net, compute_end_to_end, compute_factor, compress_network
from solver import train
arrays = np.load(data)
target, mask = jnp.asarray(arrays['target']), jnp.asarray(arrays['mask'])
loss_fn_dict = {'train': create_loss(target, mask=mask), 'test': create_loss(target, mask=1 - mask)}
d, rank, depth = int(d), int(rank), int(depth)
start = time.perf_counter()
init_weights = init_net(key=PRNGKey(int(seed)), input_dim=d, output_dim=d, width=d, depth=depth, init_scale=float(eps))
V = compute_factor(init_weights, compute_end_to_end, loss_fn_dict['train'], rank)
weights = compress_network(init_weights, V, rank)
jax.block_until_ready(weights)
setup = time.perf_counter() - start
result = train(init_weights=weights, network_fn=compute_end_to_end, loss_fn_dict=loss_fn_dict, n_outer_loops=1000,
               step_size=float(lr), dlr=float(gamma), tol=float(tol))
wall = time.perf_counter() - start - setup
train_loss = [float(x) for x in result['train_loss']]
print(json.dumps(dict(steps=100 * (len(train_loss) - 1), seconds=float(result['time'][-1]), wall_seconds=wall,
                      setup_seconds=setup, converged=train_loss[-1] < float(tol), train_loss=train_loss[-1],
                      recovery_error=float(result['test_loss'][-1]), jax=jax.__version__, devices=str(jax.devices()))))
'''


def machine():
    import torch
    cpu = next((l.split(':', 1)[1].strip() for l in open('/proc/cpuinfo') if l.startswith('model name')), platform.processor())
    return dict(cpu=cpu, logical_cpus=os.cpu_count(), torch=torch.__version__, torch_threads=torch.get_num_threads(),
                python=platform.python_version(), load_average=os.getloadavg())


def ours_worker(d, threads):
    "One run of ours in this (fresh) process: the problem from its seed, then train_completion at its defaults."
    import torch
    from deeplora_nb.completion import CompletionProblem, train_completion
    import deeplora_nb.completion.kernels as kernels
    if threads == 'one': torch.set_num_threads(1)
    if threads == 'all':  # the fused kernel kept on all threads, never switching to one
        init = kernels.FusedChain.__init__
        def all_threads(self, *a, **k): init(self, *a, **k); self.fixed_threads = self.parts
        kernels.FusedChain.__init__ = all_threads
    s = COMMON | SETTINGS[d]
    problem = CompletionProblem.random(d, d, s['rank'], s['observed'], seed=s['seed'])
    result = train_completion(problem, 'compressed', depth=s['depth'], eps=s['eps'], lr=s['lr'], gamma=s['gamma'],
                              tol=s['tol'], progress=False, seed=s['seed'])
    summary = result.summary()
    print(json.dumps(dict(steps=result.steps, seconds=result.seconds, setup_seconds=result.setup_seconds,
                          converged=result.converged, train_loss=summary['train_loss'], recovery_error=summary['recovery_error'],
                          kernel=result.config['kernel'], threads=result.config['threads'],
                          thread_steps=result.config.get('thread_steps'))))  # steps the default ran on each count


def save_problem(d, path):
    "The matrix and mask both sides train on, for the authors' code (which takes a dense target and a 0/1 mask)."
    import numpy as np, torch
    from deeplora_nb.completion import CompletionProblem
    s = COMMON | SETTINGS[d]
    problem = CompletionProblem.random(d, d, s['rank'], s['observed'], seed=s['seed'])
    mask = torch.zeros(d, d, dtype=torch.float64)
    mask[problem.rows, problem.cols] = 1
    np.savez(path, target=problem.target().numpy(), mask=mask.numpy())


def run_json(cmd, env=None):
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if proc.returncode: raise RuntimeError(f"{' '.join(cmd[:3])} ... failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def run_ours(d, threads='default'):
    env = {**os.environ, 'OMP_NUM_THREADS': '1'} if threads == 'one' else None
    return run_json([sys.executable, __file__, '--worker', str(d), '--worker-threads', threads], env)


def run_theirs(d, args, data):
    s = COMMON | SETTINGS[d]
    with tempfile.NamedTemporaryFile('w', suffix='.py', delete=False) as f: f.write(PEER_WORKER)
    try:
        return run_json([args.peer_python, f.name, args.peer_src, data, str(d), str(s['rank']), str(s['depth']), str(s['eps']),
                         str(s['lr']), str(s['gamma']), str(s['tol']), str(s['seed'])])
    finally: os.unlink(f.name)


def spread(values): return dict(min=min(values), max=max(values), median=sorted(values)[len(values) // 2])


OURS = ('ours', 'ours-1-thread', 'ours-all-threads')  # the default, and the two thread counts it picks between
AGAIN = 'ours-1-thread-again'  # with --busy: one thread a second time, next to the first
THREADS = {'ours': 'default', 'ours-1-thread': 'one', 'ours-all-threads': 'all', AGAIN: 'one'}


def busy_processes(count):
    "`count` processes that keep a core busy each, until killed."
    return [subprocess.Popen([sys.executable, '-c', 'while True: pass']) for _ in range(count)]


def run_condition(condition, args, data, report):
    "Every size and side `--repeats` times, alternating (the order flips every repeat), under one condition."
    for repeat in range(args.repeats):
        for d in args.sizes:
            sides = [*OURS[:2], *([AGAIN] if args.busy else []), *OURS[2:], *(['theirs'] if args.peer_src else [])]
            for side in (sides if repeat % 2 == 0 else sides[::-1]):
                r = run_theirs(d, args, data[d]) if side == 'theirs' else run_ours(d, THREADS[side])
                r.update(side=side, d=d, repeat=repeat, condition=condition, load_average=os.getloadavg()[0])
                report['runs'].append(r)
                print(f"{condition:>5} d={d:5d} repeat {repeat} {side:>16}: {r['steps']:6d} iterations, {r['seconds']:6.2f} s "
                      f"({1e3 * r['seconds'] / r['steps']:.3f} ms/it), setup {r['setup_seconds']:.2f} s, "
                      f"recovery error {r['recovery_error']:.1e}, load {r['load_average']:.1f}", flush=True)


def summarise(report, condition, d):
    "Medians and per-repeat ratios (runs of one repeat sat next to each other) of one condition and size."
    runs = [r for r in report['runs'] if r['d'] == d and r['condition'] == condition]
    side = lambda name: sorted((r for r in runs if r['side'] == name), key=lambda r: r['repeat'])
    mine, one, every, theirs, again = side('ours'), side('ours-1-thread'), side('ours-all-threads'), side('theirs'), side(AGAIN)
    total = lambda r: r['seconds'] + r['setup_seconds']
    row = dict(ours_seconds=spread([r['seconds'] for r in mine]), ours_steps=mine[0]['steps'],
               ours_setup=spread([r['setup_seconds'] for r in mine]), threads=mine[0]['threads'], kernel=mine[0]['kernel'],
               one_thread_seconds=spread([r['seconds'] for r in one]), all_threads_seconds=spread([r['seconds'] for r in every]),
               default_vs_best=spread([total(o) / min(total(a), total(b)) for o, a, b in zip(mine, one, every)]))
    if again: row.update(one_thread_again=spread([total(b) / total(a) for a, b in zip(one, again)]))  # the same run twice
    if theirs:
        row.update(theirs_seconds=spread([r['seconds'] for r in theirs]), theirs_steps=theirs[0]['steps'],
                   theirs_setup=spread([r['setup_seconds'] for r in theirs]),
                   ratio=spread([o['seconds'] / t['seconds'] for o, t in zip(mine, theirs)]),
                   ratio_with_setup=spread([total(o) / total(t) for o, t in zip(mine, theirs)]),
                   iteration_ratio=mine[0]['steps'] / theirs[0]['steps'])
    return row


def signal_pids(path, sig):
    if path:
        for pid in open(path).read().split():
            try: os.kill(int(pid), sig)
            except ProcessLookupError: pass


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('--peer-src', default=None, help="a clone of cjyaras/law-of-parsimony")
    ap.add_argument('--peer-python', default=None, help='a Python with jax, optax and tqdm (default: this one)')
    ap.add_argument('--repeats', type=int, default=2)
    ap.add_argument('--sizes', type=int, nargs='+', default=[300, 1000], choices=sorted(SETTINGS))
    ap.add_argument('--busy', type=int, default=0, help='also run everything with this many busy processes beside it')
    ap.add_argument('--pause-pids', default=None, help='a file of pids to stop (SIGSTOP) while the benchmark runs')
    ap.add_argument('--out', default='nbs/results/03_completion/bench_vs_authors_1.json')
    ap.add_argument('--worker', type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument('--worker-threads', default='default', help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.worker: return ours_worker(args.worker, args.worker_threads)
    if args.peer_src and not os.path.isfile(os.path.join(args.peer_src, 'solver.py')):
        ap.error(f"--peer-src {args.peer_src}: no solver.py there (expected a clone of cjyaras/law-of-parsimony)")
    args.peer_python = args.peer_python or sys.executable
    out_dir = os.path.dirname(os.path.abspath(args.out))
    if not os.path.isdir(out_dir): ap.error(f"--out {args.out}: the folder {out_dir} does not exist")
    conditions = ['quiet', 'busy'] if args.busy else ['quiet']
    signal_pids(args.pause_pids, signal.SIGSTOP)
    try:
        time.sleep(5 if args.pause_pids else 0)  # let the load of what was stopped drain from the caches
        report = dict(machine=machine(), settings={d: COMMON | SETTINGS[d] for d in args.sizes}, peer_src=args.peer_src,
                      busy_processes=args.busy, paused=bool(args.pause_pids), runs=[])
        print('machine:', report['machine'], flush=True)
        with tempfile.TemporaryDirectory() as tmp:
            data = {}
            if args.peer_src:
                for d in args.sizes:
                    data[d] = os.path.join(tmp, f'problem_{d}.npz'); save_problem(d, data[d])
            for condition in conditions:
                busy = busy_processes(args.busy) if condition == 'busy' else []
                try: run_condition(condition, args, data, report)
                finally:
                    for p in busy: p.kill(); p.wait()
    finally: signal_pids(args.pause_pids, signal.SIGCONT)
    report['machine']['load_average_end'] = os.getloadavg()
    report['summary'] = {c: {d: summarise(report, c, d) for d in args.sizes} for c in conditions}
    print()
    print("| machine | run | authors' JAX | ours | ours / theirs (time) | ours / best of 1 and all threads | one thread: second run / first |")
    print('|---|---|---|---|---|---|---|')
    for condition in conditions:
        for d, row in report['summary'][condition].items():
            s = report['settings'][d]
            ours = f"{row['ours_steps']:,} its, {row['ours_seconds']['median']:.2f} s"
            if 'theirs_seconds' in row:
                theirs = f"{row['theirs_steps']:,} its, {row['theirs_seconds']['median']:.2f} s"
                ratio = f"{row['ratio']['median']:.2f} ({row['ratio']['min']:.2f}-{row['ratio']['max']:.2f})"
            else: theirs, ratio = 'not run', ''
            best = row['default_vs_best']
            where = condition if condition == 'quiet' else f"{args.busy} busy processes"
            again = row.get('one_thread_again')
            print(f"| {where} | d={d}, r={s['rank']}, {100 * s['observed']:g}%, lr {s['lr']:g} | {theirs} | {ours} | {ratio} | "
                  f"{best['median']:.2f} ({best['min']:.2f}-{best['max']:.2f}) | "
                  + (f"{again['median']:.2f} ({again['min']:.2f}-{again['max']:.2f}) |" if again else '|'))
    if not args.peer_src:
        print("\nThe authors' code was not run. To time it beside ours: git clone https://github.com/cjyaras/law-of-parsimony, "
              "make a Python with jax, optax and tqdm (python -m venv jaxvenv && jaxvenv/bin/pip install jax optax tqdm), and rerun with "
              "--peer-src law-of-parsimony --peer-python jaxvenv/bin/python")
    with open(args.out, 'w') as f: json.dump(report, f, indent=1)
    print('written', args.out)


if __name__ == '__main__': main()

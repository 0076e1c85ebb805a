"""Depth 2 vs depth 3 over width: d = 100, r = 10, 30% observed, narrow networks of width 10..100, 5 trials each.

    python bench/depth_vs_width.py ours                       # deeplora_nb, appends to ..._trials.jsonl
    python bench/depth_vs_width.py ablation                   # the earlier run's settings, one change at a time
    JAXPY bench/depth_vs_width.py peer --peer-src DIR         # the authors' code (a clone of cjyaras/law-of-parsimony),
                                                              # run by a Python with jax, optax and tqdm
    python bench/depth_vs_width.py crosscheck                 # ours from the authors' exact target, mask and start
    python bench/depth_vs_width.py summary                    # writes depth_vs_width.json from the trial files

The authors' settings (their fig_compare_depth notebook): orthogonal start of scale 1e-3, lr 3e2 at depth 3 and 1e2 at
depth 2 (mean-loss units: c = 1/(mn)), stop when the train loss < 1e-10, loss checked every 100 steps, at most 60,000
steps. Every finished trial is one JSON line in the trial file, written as soon as it ends; a rerun skips the trials
already there, so an interrupted run resumes where it stopped. One torch thread; run it with `nice -n 10`.
"""
import argparse, json, math, os, sys, time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # this checkout's deeplora_nb, whatever is installed
RESULTS = ROOT / 'nbs' / 'results' / '03_completion'
D, RANK, OBSERVED, EPS, TOL, MAX_STEPS, CHECK_EVERY = 100, 10, 0.3, 1e-3, 1e-10, 60_000, 100
LR = {2: 1e2, 3: 3e2}  # the authors' step sizes (their depth-2 loop sets 1e2 inside the loop)
WIDTHS = tuple(range(10, 101, 10))
PROBLEM_SEED = 0
RECOVERED = 1e-2  # relative error ||X - Phi||_F / ||Phi||_F below which a trial counts as recovered
COMPRESSED_WIDTH = 2 * RANK  # the compressed network, k = r, beside the narrow ones at depth 3

def trial_seed(depth, width, trial):
    "Initialisation seed of one trial: distinct for every (depth, width, trial), and never the problem's seed."
    return 1 + 1000 * depth + 10 * width + trial

def _done(path):
    if not path.exists(): return set()
    return {(r['net'], r['depth'], r['width'], r['trial']) for r in map(json.loads, path.read_text().splitlines()) if r}

def _append(path, row):
    with open(path, 'a') as f: f.write(json.dumps(row) + '\n')

def run_ours(args):
    import torch
    from deeplora_nb.completion import CompletionProblem, train_completion
    torch.set_num_threads(args.threads)
    out = Path(args.out or RESULTS / 'depth_vs_width_trials.jsonl'); done = _done(out)
    problem = CompletionProblem.random(D, D, RANK, OBSERVED, seed=PROBLEM_SEED)
    jobs = [('narrow', depth, width) for depth in (3, 2) for width in args.widths] + [('compressed', 3, COMPRESSED_WIDTH)]
    for net, depth, width in jobs:
        for trial in range(args.trials):
            if (net, depth, width, trial) in done: continue
            seed = trial_seed(depth, width, trial)
            res = train_completion(problem, net, depth=depth, width=width, eps=EPS, lr=LR[depth], tol=TOL, max_steps=MAX_STEPS,
                                   check_every=CHECK_EVERY, log_every=1000, progress=False, seed=seed)
            s = res.summary()
            row = dict(net=net, depth=depth, width=width, trial=trial, seed=seed, steps=s['steps'], converged=s['converged'],
                       train_loss=s['train_loss'], recovery_error=s['recovery_error'], relative_error=s['relative_error'],
                       seconds=s['seconds'], threads=args.threads, lr=LR[depth],
                       history={k: res.history[k] for k in ('step', 'train_loss', 'recovery_error')})
            _append(out, row)
            print(f"{net} L={depth} w={width} trial {trial}: {s['steps']} steps, converged {s['converged']}, "
                  f"recovery error {s['recovery_error']:.2e}, relative error {s['relative_error']:.1e}", flush=True)

ABLATION = {  # depth 3, widths 40 and 100, the authors' tol and step limit: the earlier run's choices, one at a time
    'default lr, init seed = problem seed': dict(lr=None, coupled=True),
    'default lr, independent init seeds': dict(lr=None, coupled=False),
    'lr 3e2, init seed = problem seed': dict(lr=LR[3], coupled=True),
}

ABLATION_TRIALS = 3  # independent seeds per width at the default step (each run up to 60,000 steps)

def run_ablation(args):
    """Which of the earlier run's choices (default step size, init seed equal to the problem's) decides recovery.

    The earlier run itself (tol 1e-13, up to 150,000 steps, one trial) is its saved output, depth_vs_width_earlier.json."""
    import torch
    from deeplora_nb.completion import CompletionProblem, train_completion
    torch.set_num_threads(args.threads)
    out = Path(args.out or RESULTS / 'depth_vs_width_ablation.jsonl')
    done = {(r['variant'], r['width'], r['trial']) for r in map(json.loads, out.read_text().splitlines())} if out.exists() else set()
    problem = CompletionProblem.random(D, D, RANK, OBSERVED, seed=PROBLEM_SEED)
    for variant, v in ABLATION.items():
        for width in (40, 100):
            for trial in range(1 if v['coupled'] else min(args.trials, ABLATION_TRIALS)):
                if (variant, width, trial) in done: continue
                seed = PROBLEM_SEED if v['coupled'] else trial_seed(3, width, trial)
                res = train_completion(problem, 'narrow', depth=3, width=width, eps=EPS, lr=v['lr'], tol=TOL,
                                       max_steps=MAX_STEPS, check_every=CHECK_EVERY, log_every=1000,
                                       progress=False, seed=seed)
                s = res.summary()
                row = dict(variant=variant, width=width, trial=trial, seed=seed, lr=res.config['lr'], tol=res.config['tol'],
                           max_steps=MAX_STEPS, steps=s['steps'], converged=s['converged'],
                           train_loss=s['train_loss'], recovery_error=s['recovery_error'], relative_error=s['relative_error'],
                           history={k: res.history[k] for k in ('step', 'train_loss', 'relative_error')})
                _append(out, row)
                print(f"{variant} | w={width} trial {trial} (seed {seed}, lr {row['lr']:.3g}): {s['steps']} steps, "
                      f"converged {s['converged']}, relative error {s['relative_error']:.1e}", flush=True)

def run_peer(args):
    "The authors' own modules, in the order their notebook draws its keys: target, mask, then depth 3 and depth 2 trials."
    sys.path.insert(0, args.peer_src)
    import numpy as np
    from jax import config
    config.update('jax_enable_x64', True)
    from jax.random import PRNGKey, split
    from data import generate_data, generate_observation_matrix
    from loss import create_loss
    from network import init_net, compute_end_to_end
    from solver import train
    out = Path(args.out or RESULTS / 'depth_vs_width_peer_trials.jsonl'); done = _done(out)
    key = PRNGKey(0)
    key, sub = split(key); target = generate_data(key=sub, shape=(D, D), rank=RANK)
    key, sub = split(key); mask = generate_observation_matrix(key=sub, percent_observed=OBSERVED, shape=(D, D))
    losses = {'train': create_loss(target, mask=mask), 'test': create_loss(target, mask=1 - mask)}
    starts = {}
    for depth in (3, 2):
        for width in WIDTHS:
            if depth == 2: key, sub = split(key)  # their depth-2 loop splits once more per width
            for trial in range(args.trials):
                key, sub = split(key)
                weights = init_net(key=sub, input_dim=D, output_dim=D, width=int(width), depth=depth, init_scale=EPS)
                if trial == 0 and width in args.save_starts: starts[f'{depth}_{width}'] = [np.asarray(w) for w in weights]
                if ('narrow', depth, width, trial) in done or width not in args.widths: continue
                res = train(init_weights=weights, network_fn=compute_end_to_end, loss_fn_dict=losses,
                            n_outer_loops=MAX_STEPS // CHECK_EVERY, step_size=LR[depth], tol=TOL)
                train_loss, test_loss = np.asarray(res['train_loss']), np.asarray(res['test_loss'])
                X = np.asarray(compute_end_to_end(res['final_weights']))
                steps = CHECK_EVERY * (len(test_loss) - 1)
                row = dict(net='narrow', depth=depth, width=width, trial=trial, steps=steps,
                           their_num_iters_x100=len(test_loss), converged=bool(train_loss[-1] < TOL),
                           train_loss=float(train_loss[-1]), recovery_error=float(test_loss[-1]),
                           relative_error=float(np.linalg.norm(X - np.asarray(target)) / np.linalg.norm(np.asarray(target))),
                           seconds=float(res['time'][-1]), train_loss_every_100=train_loss.tolist())
                _append(out, row)
                print(f"peer L={depth} w={width} trial {trial}: {steps} steps, recovery error {test_loss[-1]:.2e}", flush=True)
    np.savez(RESULTS / 'depth_vs_width_peer_data.npz', target=np.asarray(target), mask=np.asarray(mask),
             **{f'start_{name}_W{l + 1}': w for name, ws in starts.items() for l, w in enumerate(ws)})

def _gaps(a, b):
    "Relative gap of two train-loss curves (every 100 steps): the largest, and the last step up to which it stays below 1e-9."
    n = min(len(a), len(b))
    gap = [abs(x - y) / abs(y) for x, y in zip(a[:n], b[:n])]
    apart = next((i for i, g in enumerate(gap) if g > 1e-9), n)
    return dict(max=max(gap), agree_to_1e9_until_step=CHECK_EVERY * (apart - 1), gap_every_1000=gap[::10])

def run_crosscheck(args):
    "train_completion from the authors' target, mask and first-trial start: its train loss every 100 steps beside theirs."
    import numpy as np, torch
    from deeplora_nb.completion import CompletionProblem, train_completion
    torch.set_num_threads(args.threads)
    data = np.load(RESULTS / 'depth_vs_width_peer_data.npz')
    target, mask = torch.from_numpy(data['target']), torch.from_numpy(data['mask']).bool()
    problem = CompletionProblem.from_dense(target, mask)
    peer = {(r['depth'], r['width']): r for r in map(json.loads, (RESULTS / 'depth_vs_width_peer_trials.jsonl').read_text().splitlines())
            if r['trial'] == 0}
    out = {}
    for name in sorted({k.rsplit('_W', 1)[0][len('start_'):] for k in data.files if k.startswith('start_')}):
        depth, width = map(int, name.split('_'))
        def train_from(start):  # their start (`init_factors`), our trainer
            return train_completion(problem, 'narrow', depth=depth, width=width, eps=EPS, lr=LR[depth], tol=TOL,
                                    max_steps=MAX_STEPS, check_every=CHECK_EVERY, log_every=CHECK_EVERY, progress=False,
                                    init_factors=start)
        start = [torch.from_numpy(data[f'start_{name}_W{l + 1}']) for l in range(depth)]
        res = train_from([W.clone() for W in start])
        # the same start with W_1 scaled by 1 + 1e-15: how fast round-off alone separates two runs of our own trainer
        nudged = train_from([start[0] * (1 + 1e-15)] + [W.clone() for W in start[1:]])
        theirs = peer[(depth, width)]
        out[name] = dict(depth=depth, width=width, steps_ours=res.steps, steps_theirs=theirs['steps'], steps_nudged=nudged.steps,
                         recovery_error_ours=res.final['recovery_error'], recovery_error_theirs=theirs['recovery_error'],
                         ours_vs_theirs=_gaps(res.history['train_loss'], theirs['train_loss_every_100']),
                         ours_vs_nudged=_gaps(res.history['train_loss'], nudged.history['train_loss']))
        print(name, out[name], flush=True)
    (RESULTS / 'depth_vs_width_crosscheck.json').write_text(json.dumps(out, indent=1))

def _stats(values):
    mean = sum(values) / len(values)
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / len(values))  # population std, as jnp.std

def summarize(args):
    "Mean ('recovery_error', 'steps'), std, min and max over trials for every (network, depth, width), ours (keys 'L w', '3 compressed') and the authors' ('peer L w')."
    summary = dict(setting=dict(d=D, rank=RANK, observed=OBSERVED, eps=EPS, lr=LR, tol=TOL, max_steps=MAX_STEPS,
                                check_every=CHECK_EVERY, problem_seed=PROBLEM_SEED, recovered_below=RECOVERED))
    for source, name in (('ours', 'depth_vs_width_trials.jsonl'), ('peer', 'depth_vs_width_peer_trials.jsonl')):
        path = RESULTS / name
        if not path.exists(): continue
        groups = {}
        for r in map(json.loads, path.read_text().splitlines()):
            groups.setdefault((r['net'], r['depth'], r['width']), []).append(r)
        for (net, depth, width), rows in sorted(groups.items()):
            err, its = _stats([r['recovery_error'] for r in rows]), _stats([r['steps'] for r in rows])
            entry = dict(source='ours' if source == 'ours' else 'authors', net=net, depth=depth, width=width, trials=len(rows),
                         recovery_error=err[0], recovery_error_std=err[1], recovery_error_min=min(r['recovery_error'] for r in rows),
                         recovery_error_max=max(r['recovery_error'] for r in rows), steps=round(its[0]), steps_std=its[1],
                         steps_min=min(r['steps'] for r in rows), steps_max=max(r['steps'] for r in rows),
                         converged=sum(r['converged'] for r in rows))
            if 'relative_error' in rows[0]:
                entry.update(relative_error_max=max(r['relative_error'] for r in rows),
                             recovered=sum(r['relative_error'] < RECOVERED for r in rows))
            summary[(f'{depth} {width}' if net == 'narrow' else f'{depth} {net}') if source == 'ours'
                    else f'peer {depth} {width}'] = entry
    ablation = RESULTS / 'depth_vs_width_ablation.jsonl'
    if ablation.exists():
        groups = {}
        for r in map(json.loads, ablation.read_text().splitlines()): groups.setdefault((r['variant'], r['width']), []).append(r)
        summary['ablation'] = [dict(variant=variant, width=width, trials=len(rows), lr=rows[0]['lr'], tol=rows[0]['tol'],
                                    max_steps=rows[0]['max_steps'], seeds=[r['seed'] for r in rows],
                                    recovered=sum(r['relative_error'] < RECOVERED for r in rows),
                                    converged=sum(r['converged'] for r in rows), steps=[r['steps'] for r in rows],
                                    relative_error=[r['relative_error'] for r in rows])
                               for (variant, width), rows in groups.items()]
    cross = RESULTS / 'depth_vs_width_crosscheck.json'
    if cross.exists(): summary['crosscheck'] = json.loads(cross.read_text())
    out = Path(args.out or RESULTS / 'depth_vs_width.json')
    out.write_text(json.dumps(summary, indent=1))
    print(f"written {out}")

def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('mode', choices=('ours', 'ablation', 'peer', 'crosscheck', 'summary'))
    ap.add_argument('--trials', type=int, default=5)
    ap.add_argument('--widths', type=int, nargs='+', default=list(WIDTHS))
    ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--peer-src', help="folder with the authors' solver.py, network.py, loss.py, data.py")
    ap.add_argument('--save-starts', type=int, nargs='*', default=[10, 40, 100], help='peer: widths whose first start is saved')
    ap.add_argument('--out', default=None, help='trial file (JSON lines) to append to; summary: the JSON to write')
    args = ap.parse_args()
    if args.mode == 'peer' and not args.peer_src:
        sys.exit("peer mode needs --peer-src DIR (a clone of github.com/cjyaras/law-of-parsimony) and a Python with jax, optax, tqdm")
    {'ours': run_ours, 'ablation': run_ablation, 'peer': run_peer, 'crosscheck': run_crosscheck, 'summary': summarize}[args.mode](args)

if __name__ == '__main__': main()

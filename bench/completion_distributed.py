"""Matrix completion on several processes (torch.distributed), at a size no dense code can hold.

    torchrun --standalone --nproc-per-node 2 bench/completion_distributed.py                       # 1e6 x 1e6, 1e8 entries
    torchrun --standalone --nproc-per-node 2 bench/completion_distributed.py --rows 100000 --observed 1e-3   # a quick one

Each process draws only its own rows of a random rank-r problem (`random_shard`), trains the compressed network with
`train_completion(shard, distributed=True)` until the train loss is --reduction times its start, and reports its
time, iterations and peak memory; process 0 writes them all, with the history, as JSON (--out). On several machines
run it with torchrun --nnodes N --node-rank i --master-addr HOST0 --master-port 29500 on each.
"""
import argparse, json, os, resource, socket, time
from pathlib import Path
import torch
import torch.distributed as dist
from deeplora_nb.checks import write_atomic
from deeplora_nb.completion import random_shard, train_completion

OUT = Path(__file__).resolve().parents[1] / "nbs" / "results" / "03_completion" / "distributed.json"


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--rows", type=int, default=1_000_000, help="m (and n unless --cols)")
    p.add_argument("--cols", type=int, default=None, help="n")
    p.add_argument("--rank", type=int, default=5, help="rank of the target")
    p.add_argument("--observed", type=float, default=1e-4, help="observed fraction (1e-4 of 1e12: 1e8 entries)")
    p.add_argument("--reduction", type=float, default=1e-8, help="stop when the train loss is this times its start")
    p.add_argument("--max-steps", type=int, default=1500)
    p.add_argument("--log-every", type=int, default=50)
    p.add_argument("--eps", type=float, default=0.3, help="start scale (0.3: a plateau of ~200 steps at this size)")
    p.add_argument("--gamma", type=float, default=0.01)
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--out", type=Path, default=OUT, help="JSON written by process 0")
    return p


def main():
    args = parser().parse_args()
    torch.set_num_threads(args.threads)
    dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0))) if torch.cuda.is_available() else torch.device("cpu")
    if device.type == "cuda": torch.cuda.set_device(device)
    m, n = args.rows, args.cols or args.rows
    start = time.perf_counter()
    shard = random_shard(m, n, args.rank, args.observed, rank, world, seed=0).to(device)
    drawn = time.perf_counter() - start
    first_loss = shard.all_reduce(shard.local.values.square().sum().reshape(1))[0].item() / (2 * m * n)
    result = train_completion(shard, "compressed", eps=args.eps, gamma=args.gamma, tol=args.reduction * first_loss,
                              max_steps=args.max_steps, log_every=args.log_every, progress=rank == 0, distributed=True,
                              device=device)
    mine = dict(rank=rank, host=socket.gethostname(), rows=[shard.start, shard.stop], entries=shard.local.num_observed,
                draw_seconds=drawn, setup_seconds=result.setup_seconds, train_seconds=result.seconds,
                seconds_per_step=result.seconds / max(result.steps, 1),
                peak_rss_gib=resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2 ** 20)
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    if rank == 0:
        report = dict(shape=[m, n], target_rank=args.rank, observed=shard.num_observed, processes=world,
                      threads_per_process=args.threads, device=str(device), reduction=args.reduction,
                      steps=result.steps, converged=result.converged, final=result.final, history=result.history,
                      config=result.config, per_process=everyone,
                      dense_factors_tib=3 * min(m, n) * max(m, n) * 8 / 2 ** 40)
        for p in everyone:
            print(f"process {p['rank']}: rows {p['rows'][0]}..{p['rows'][1] - 1}, {p['entries']:,} entries, draw "
                  f"{p['draw_seconds']:.1f} s, setup {p['setup_seconds']:.1f} s, train {p['train_seconds']:.1f} s "
                  f"({1e3 * p['seconds_per_step']:.0f} ms/step), peak memory {p['peak_rss_gib']:.2f} GiB")
        f = result.final
        print(f"{m:,} x {n:,}, rank {args.rank}, {shard.num_observed:,} observed: {result.steps} steps, converged="
              f"{result.converged}, train loss {first_loss:.3e} -> {f['train_loss']:.3e}, relative error "
              f"{f['relative_error']:.3e}")
        args.out.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(args.out, json.dumps(report, indent=1))
        print(f"written to {args.out}")
    dist.destroy_process_group()


if __name__ == "__main__":
    main()

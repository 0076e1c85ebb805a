"""Run the paper's fine-tuning protocol (deeplora_nb.experiments.protocol_plan) resumably, in several processes.

    nice -n 10 python bench/finetune_experiments.py --workers 2 --pids /tmp/deeplora_runner.pids   # this 2-core CPU box
    nice -n 10 python bench/finetune_experiments.py --workers 2 --claims-first   # the order the saved runs were made in
    nice -n 19 python bench/finetune_experiments.py --workers 2 --parts gi      # GLUE-1,024, then the PEFT inits (i)
    python bench/finetune_experiments.py --model /data/minilm --device cuda --steps 500 --seeds 20 \\
        --results runs/protocol_gpu.jsonl                                   # the full-size version on a GPU machine

Each finished run is appended as one JSON line to --results (default nbs/results/06_experiments/protocol.jsonl);
restarting skips the runs already there, and the processes share the file, each taking the next run no one holds.
The model comes from --model (a local folder: a machine without internet needs no hub), default the offline MiniLM.
"""
import argparse, os, subprocess, sys
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
RESULTS = Path(__file__).resolve().parents[1] / "nbs" / "results" / "06_experiments" / "protocol.jsonl"


def parser():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=RESULTS, help="JSON-lines results file (appended, resumable)")
    p.add_argument("--workers", type=int, default=1, help="processes sharing the plan")
    p.add_argument("--threads", type=int, default=1, help="torch threads per process")
    p.add_argument("--model", default=None, help="local model folder or hub name (default: the offline MiniLM)")
    p.add_argument("--device", default="cpu")
    p.add_argument("--steps", type=int, default=200, help="steps of parts a-e (the paper: 500 for the few-shot sweep)")
    p.add_argument("--steps-256", type=int, default=500, help="steps of part f")
    p.add_argument("--steps-1024", type=int, default=600, help="steps of parts g, h (the paper's SST-2 run; GLUE: 1000)")
    p.add_argument("--seeds", type=int, default=10, help="paired seeds of parts a, b, e")
    p.add_argument("--few-seeds", type=int, default=6, help="seeds of parts c, d, f (6: the fewest a paired sign-flip test can decide on)")
    p.add_argument("--eval-size", type=int, default=1000, help="validation examples (more than a split has: all of it)")
    p.add_argument("--parts", default="abcdef", help="which parts, in this order (i: the LoRA inits users would pick "
                   "instead, planned from its saved tuning runs)")
    p.add_argument("--claims-first", action="store_true",
                   help="after (a), one answer per claim before more of any: (c) at rank 8, (d)'s compressed adapter at "
                        "lr 1e-2, (c) at rank 64, (d) at lr 1e-4, (c) at ranks 16 and 32, then the rest in --parts order")
    p.add_argument("--pids", type=Path, default=None, help="write the worker pids here, one per line")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    return p


def claims_first(item) -> tuple:
    "Sort key of --claims-first (a stable sort keeps the plan's own order inside each group)."
    part, _, config = item
    if part == "c": return (1, {8: 0, 64: 2}.get(config.rank, 4))
    if part == "d": return (1, 1 if config.lr > 1e-3 else 3)
    return (0 if part == "a" else 2, 0)


def main():
    args = parser().parse_args()
    if args.workers > 1 and not args.worker:
        argv = [a for a in sys.argv[1:]]
        procs = [subprocess.Popen([sys.executable, __file__, *argv, "--worker"]) for _ in range(args.workers)]
        if args.pids: args.pids.write_text("".join(f"{p.pid}\n" for p in [*procs]))
        sys.exit(max(p.wait() for p in procs))
    if args.pids and not args.worker: args.pids.write_text(f"{os.getpid()}\n")
    import torch
    torch.set_num_threads(args.threads)
    from deeplora_nb.comparison import run_plan, read_runs
    from deeplora_nb.experiments import protocol_plan, adopters_plan
    args.results.parent.mkdir(parents=True, exist_ok=True)
    protocol_parts = args.parts.replace("i", "")
    plan = protocol_plan(steps=args.steps, seeds=args.seeds, few_seeds=args.few_seeds, steps_256=args.steps_256,
                         steps_1024=args.steps_1024, model=args.model, eval_size=args.eval_size, device=args.device,
                         parts=protocol_parts) if protocol_parts else []
    if args.claims_first: plan = sorted(plan, key=claims_first)
    done = run_plan(plan, args.results)
    while "i" in args.parts:   # part (i) grows as its grids are saved: plan again until a pass adds nothing
        added = run_plan(adopters_plan(read_runs(args.results).values(), seeds=args.few_seeds, model=args.model,
                                       device=args.device), args.results)
        done += added
        if not added: break
    print(f"finished {done} runs; results in {args.results}")


if __name__ == "__main__":
    main()

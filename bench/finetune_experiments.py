"""Run the fine-tuning notebook's slow experiments as two processes (one torch thread each) on a 2-core machine.

    python bench/finetune_experiments.py                 # both halves, in parallel
    python bench/finetune_experiments.py --part A        # fewshot (tuning first), then rank
    python bench/finetune_experiments.py --part B        # shared, then progress (waits for the tuning runs of A)

Results are appended to nbs/results/05_finetune/ as each run finishes; re-running resumes.
"""
import argparse, json, os, subprocess, sys, time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1"); os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
RESULTS = Path(__file__).resolve().parents[1] / "nbs" / "results" / "05_finetune"
PARTS = {"A": ("fewshot", "rank"), "B": ("shared", "progress")}


def wait_for_tuning(path: Path, expected: int, poll: float = 20.0):
    while True:
        lines = path.read_text().splitlines() if path.exists() else []
        if sum(json.loads(l)["phase"] == "tune" for l in lines if l.strip()) >= expected: return
        time.sleep(poll)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--part", choices=["A", "B", "both"], default="both")
    p.add_argument("--threads", type=int, default=1)
    args = p.parse_args()
    if args.part == "both":
        procs = [subprocess.Popen([sys.executable, __file__, "--part", part, "--threads", str(args.threads)]) for part in "AB"]
        sys.exit(max(proc.wait() for proc in procs))
    import torch
    torch.set_num_threads(args.threads)
    from deeplora_nb.finetune import run_experiments, experiment_comparisons, EXPERIMENT_LR_GRID
    parts = PARTS[args.part]
    if args.part == "B":
        run_experiments(RESULTS, parts=("shared",))
        fewshot = experiment_comparisons()["fewshot"]
        wait_for_tuning(RESULTS / "fewshot" / "runs.jsonl", len(fewshot.methods) * len(EXPERIMENT_LR_GRID) * fewshot.tune_seeds)
        run_experiments(RESULTS, parts=("progress",))
    else: run_experiments(RESULTS, parts=parts)


if __name__ == "__main__":
    main()

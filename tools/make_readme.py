"""Write README.md from nbs/index.ipynb (settings.ini `readme_nb`) without Quarto.

`nbdev_readme` renders the processed landing notebook with Quarto; this does the same with nbconvert:
nbdev's documentation processors (see `nbdocs.py`), then GitHub markdown. Links to sibling notebooks
(`01_theory.ipynb`) are pointed into nbs/ so they work on GitHub.

    python tools/make_readme.py           # rewrite README.md
    python tools/make_readme.py --check   # exit 1 (with a diff) if README.md is out of date
"""
import argparse, difflib, re, sys, tempfile
from pathlib import Path

from nbconvert.exporters import MarkdownExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from nbdev.config import get_config

import nbdocs

_nb_link = re.compile(r'(?<=\])\((?![a-z]+:|/|#)([^)\s]+?\.ipynb)(#[^)\s]*)?\)')  # ](01_theory.ipynb#part)


def render_readme():
    "README.md's text and any image files its outputs need, as (text, {relative path: bytes})."
    cfg = get_config()
    src = cfg.nbs_path/cfg.readme_nb
    with tempfile.TemporaryDirectory() as tmp:
        nbdocs.nbdev_process(src, Path(tmp)/src.name)
        nb, fm = nbdocs.read_processed(Path(tmp)/src.name)
    nbs_rel = cfg.nbs_path.relative_to(cfg.config_path).as_posix()
    for cell in nb.cells:
        if cell.cell_type == 'markdown':
            cell.source = _nb_link.sub(lambda m: f'({nbs_rel}/{m.group(1)}{m.group(2) or ""})', cell.source)
    head = f"# {fm.get('title', cfg.lib_name)}\n\n" + (f"> {fm['description']}\n\n" if fm.get('description') else '')
    exporter = MarkdownExporter(exclude_input_prompt=True, exclude_output_prompt=True)
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    files_dir = Path(cfg.readme_nb).stem + '_files'
    body, resources = exporter.from_notebook_node(nb, resources={'output_files_dir': files_dir})
    text = re.sub(r'\n{3,}', '\n\n', head + body).strip() + '\n'
    return text, dict(resources.get('outputs', {}))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--check', action='store_true', help='only check that README.md is up to date')
    args = parser.parse_args()
    root = get_config().config_path
    text, files = render_readme()
    readme = root/'README.md'
    if args.check:
        old = readme.read_text(encoding='utf-8') if readme.exists() else ''
        stale = [name for name, data in files.items() if not (root/name).exists() or (root/name).read_bytes() != data]
        if old == text and not stale: return print('README.md is in sync with nbs/index.ipynb')
        sys.stdout.writelines(list(difflib.unified_diff(old.splitlines(True), text.splitlines(True), 'README.md', 'from index.ipynb'))[:60])
        for name in stale: print(f'out of date: {name}')
        sys.exit('README.md is out of sync with nbs/index.ipynb: run `python tools/make_readme.py` and commit the result')
    readme.write_text(text, encoding='utf-8')
    for name, data in files.items():
        (root/name).parent.mkdir(parents=True, exist_ok=True)
        (root/name).write_bytes(data)
    print(f'wrote {readme}' + (f' and {len(files)} image(s) under {Path(next(iter(files))).parent}' if files else ''))


if __name__ == '__main__': main()

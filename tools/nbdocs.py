"""Notebook processing shared by `make_readme.py` and `build_docs.py`.

Notebooks go through nbdev's own documentation processors first (`nbdev.processors.FilterDefaults`,
the same pipeline `nbdev_docs` and `nbdev_readme` run before Quarto): `#| hide` and `#| export` cells
leave, `show_doc` is rendered for exported names, the title cell becomes front matter.
nbconvert then does the rendering Quarto would do, so this module also covers the few Quarto
features nbdev's output relies on: front matter, cell options (`echo`, `output`, `include`), and
pandoc link attributes in `show_doc` output. Nothing here needs Quarto or the internet.
"""
import os, re, shutil
from pathlib import Path

import nbformat, yaml
from nbdev.config import get_config

_cell_option = re.compile(r'^#\|\s*([\w-]+)\s*:\s*(.*?)\s*$')
_link_attrs = re.compile(r'\[([^\]\n]+)\]\(([^)\s]+)\)\{([^}\n]*)\}')  # [text](url){attr="..."}, a pandoc extension


def nbdev_process(src, dst):
    "Run nbdev's documentation processors on notebook `src` and write the result to `dst`."
    import nbdev.serve_drv
    from nbdev.processors import FilterDefaults
    Path(dst).parent.mkdir(parents=True, exist_ok=True)
    nbdev.serve_drv.main((Path(src), Path(dst), FilterDefaults))  # the worker nbdev's proc_nbs runs per notebook


def pop_frontmatter(nb):
    "Remove the YAML front matter cell nbdev's processors put first and return it as a dict."
    for i, cell in enumerate(nb.cells):
        if cell.cell_type == 'raw' and cell.source.lstrip().startswith('---'):
            del nb.cells[i]
            return yaml.safe_load(cell.source.strip().strip('-')) or {}
    return {}


def _apply_cell_options(cell):
    "Honour Quarto's cell options as Quarto would; return False if the cell should go."
    lines = cell.source.splitlines()
    opts = {}
    while lines and (m := _cell_option.match(lines[0])):
        opts[m.group(1)] = m.group(2).strip('"\'').lower()
        lines.pop(0)
    cell.source = '\n'.join(lines)
    if opts.get('include') == 'false': return False
    if opts.get('output') == 'false': cell.outputs = []
    if opts.get('echo') == 'false': cell.metadata.setdefault('tags', []).append('remove_input')
    return bool(cell.source.strip() or cell.outputs)


def _html_links(text):
    "Turn pandoc's `[text](url){attrs}` into an HTML link that any markdown renderer keeps."
    return _link_attrs.sub(lambda m: f'<a href="{m.group(2)}" {m.group(3)}>{m.group(1)}</a>', text)


def finish_for_nbconvert(nb):
    "Apply cell options and link attributes in place, after `pop_frontmatter`."
    lang = nb.metadata.get('kernelspec', {}).get('language', 'python')
    nb.metadata.setdefault('language_info', {'name': lang})  # nbdev_clean drops it; code fences and highlighting need it
    nb.cells = [c for c in nb.cells if c.cell_type != 'code' or _apply_cell_options(c)]
    for cell in nb.cells:
        if cell.cell_type == 'markdown': cell.source = _html_links(cell.source)
        for out in cell.get('outputs', []):
            md = out.get('data', {}).get('text/markdown')
            if md is not None: out['data']['text/markdown'] = _html_links(md if isinstance(md, str) else ''.join(md))
    return nb


def read_processed(path):
    "Read a notebook written by `nbdev_process`: (notebook ready for nbconvert, front matter dict)."
    nb = nbformat.read(path, as_version=4)
    fm = pop_frontmatter(nb)
    return finish_for_nbconvert(nb), fm


def page_name(nb_path, frontmatter):
    "The HTML file name Quarto gives a notebook: nbdev's `output-file`, else the stem."
    return frontmatter.get('output-file') or Path(nb_path).with_suffix('.html').name


def doc_url_prefix():
    "Absolute prefix of this project's published docs (nbdev's links to documented names use it)."
    cfg = get_config()
    return cfg.doc_host.rstrip('/') + '/' + cfg.doc_baseurl.strip('/') + '/'

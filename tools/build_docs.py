"""Build the documentation as a static site in _site/ that works offline, without Quarto.

The steps mirror `nbdev_docs`: regenerate nbs/sidebar.yml (`nbdev_sidebar`), process every notebook
with nbdev's documentation processors into the cache _proc/ (`nbdev.serve.proc_nbs`), then render.
Quarto renders there; here nbconvert does, with the lab template extended by tools/docs_template/
(a sidebar listing the pages in sidebar.yml order, previous/next links). Pages are named as Quarto
names them (`00_factorization.ipynb` -> `factorization.html`), outputs and plots are the notebooks'
saved outputs, images are embedded, links to this project's published docs and to sibling notebooks
point at the local pages. Formulas are typeset by a copy of Debian's libjs-mathjax when installed
(`apt-get install libjs-mathjax`); without it pages name MathJax's CDN and show raw TeX offline.

    python tools/build_docs.py            # -> _site/index.html
    python tools/build_docs.py --force    # reprocess every notebook, ignoring the _proc/ cache
"""
import argparse, re, shutil
from pathlib import Path
from urllib.parse import unquote

import nbformat, yaml
from nbconvert.exporters import HTMLExporter
from nbconvert.preprocessors import TagRemovePreprocessor
from nbdev.config import get_config
from nbdev.quarto import nbdev_sidebar
from nbdev.serve import proc_nbs

import nbdocs

TEMPLATE_DIR = Path(__file__).parent/'docs_template'
MATHJAX_DIR = Path('/usr/share/javascript/mathjax')
# What MathJax 2 loads for TeX input and CommonHTML output, so the site carries ~2 MB, not 50.
MATHJAX_PARTS = ['MathJax.js', 'config/TeX-AMS_CHTML-full.js', 'config/Safe.js', 'config/local', 'extensions',
                 'jax/input/TeX', 'jax/output/CommonHTML', 'jax/element', 'fonts/HTML-CSS/TeX/woff']
MATHJAX_QUERY = 'MathJax.js?config=TeX-AMS_CHTML-full,Safe'


def sidebar_notebooks(nbs_path):
    "Notebook file names in the order nbs/sidebar.yml lists them (sections flattened)."
    def walk(items):
        for item in items:
            if isinstance(item, dict):
                if 'href' in item: yield item['href']
                yield from walk(item.get('contents', []))
            else: yield item
    sidebar = yaml.safe_load((nbs_path/'sidebar.yml').read_text())
    entries = list(walk(sidebar['website']['sidebar']['contents']))
    not_nbs = [e for e in entries if not e.endswith('.ipynb')]
    if not_nbs: raise SystemExit(f'sidebar.yml lists pages this builder cannot render (notebooks only): {not_nbs}')
    missing = [e for e in entries if not (nbs_path/e).exists()]
    if missing: raise SystemExit(f'sidebar.yml lists notebooks that do not exist: {missing}')
    return entries


def copy_mathjax(site):
    "Copy the MathJax parts the pages need into `site`; return the URL pages load it from."
    if not (MATHJAX_DIR/'MathJax.js').exists():
        print(f'note: {MATHJAX_DIR} not found (apt-get install libjs-mathjax): pages load MathJax from its CDN, '
              'formulas show as TeX source offline')
        return HTMLExporter().mathjax_url
    for part in MATHJAX_PARTS:
        src, dst = MATHJAX_DIR/part, site/'mathjax'/part
        dst.parent.mkdir(parents=True, exist_ok=True)
        if src.is_dir(): shutil.copytree(src, dst, symlinks=False)
        else: shutil.copy(src, dst)
    return 'mathjax/' + MATHJAX_QUERY


def local_links(html, doc_prefix, page_of):
    "Point links at the published docs and at sibling notebooks to the local pages."
    html = html.replace(f'href="{doc_prefix}', 'href="')
    def nb_link(m):
        target, frag = m.group(1), m.group(2) or ''
        return f'href="{page_of.get(Path(target).name, target)}{frag}"'
    return re.sub(r'href="(?![a-z]+:|/|#)([^"#]+\.ipynb)(#[^"]*)?"', nb_link, html)


_heading_id = re.compile(r'(<h[1-6] id=")([^"]+)(")')


def quarto_ids(html):
    "Give headings the ids Quarto (pandoc) would, `randomorthogonal` for `RandomOrthogonal`: nbdev's links to documented names use them."
    renamed = {}
    def rename(m):
        new = re.sub(r'[^\w.-]', '', unquote(m.group(2))).lower().lstrip('0123456789-_.') or 'section'
        renamed[m.group(2)] = new
        return m.group(1) + new + m.group(3)
    html = _heading_id.sub(rename, html)
    return re.sub(r'href="#([^"]+)"', lambda m: f'href="#{renamed.get(m.group(1), m.group(1))}"', html)


def build(out='_site', force=False):
    "Build the site into `out` (relative to the repository root); return the page file names."
    cfg = get_config()
    nbs_path, site = cfg.nbs_path, cfg.config_path/out
    nbdev_sidebar.__wrapped__(path=nbs_path)  # as nbdev_docs does; a no-op with custom_sidebar = True
    notebooks = sidebar_notebooks(nbs_path)
    cache = proc_nbs(nbs_path, force=force)
    processed = {name: nbdocs.read_processed(cache/name) for name in notebooks}
    pages = [dict(nb=name, href=nbdocs.page_name(name, fm), title=fm.get('title', Path(name).stem))
             for name, (nb, fm) in processed.items()]
    page_of = {p['nb']: p['href'] for p in pages}

    if site.exists(): shutil.rmtree(site)
    site.mkdir(parents=True)
    exporter = HTMLExporter(template_file='index.html.j2', extra_template_basedirs=[str(TEMPLATE_DIR.parent)],
                            template_name=TEMPLATE_DIR.name, embed_images=True, exclude_input_prompt=True,
                            exclude_output_prompt=True, mathjax_url=copy_mathjax(site))
    exporter.register_preprocessor(TagRemovePreprocessor(remove_input_tags={'remove_input'}), enabled=True)
    for i, page in enumerate(pages):
        nb, fm = processed[page['nb']]
        head = f"# {page['title']}\n"
        if fm.get('description'): head += f"\n<div class=\"description\">\n\n{fm['description']}\n\n</div>\n"
        nb.cells.insert(0, nbformat.v4.new_markdown_cell(head))
        nb.metadata['title'] = page['title']
        nav = dict(title=cfg.title, pages=pages, current=page,
                   prev=pages[i - 1] if i > 0 else None, next=pages[i + 1] if i + 1 < len(pages) else None)
        html, _ = exporter.from_notebook_node(nb, resources={'site': nav, 'metadata': {'path': str(cache)}})
        (site/page['href']).write_text(local_links(quarto_ids(html), nbdocs.doc_url_prefix(), page_of), encoding='utf-8')
    print(f"built {len(pages)} pages in {site}: {', '.join(p['href'] for p in pages)}")
    return [p['href'] for p in pages]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='_site', help='output folder, relative to the repository root')
    parser.add_argument('--force', action='store_true', help='reprocess all notebooks, ignoring the _proc/ cache')
    args = parser.parse_args()
    build(args.out, args.force)


if __name__ == '__main__': main()

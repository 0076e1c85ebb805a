"""Check the local docs site (_site/, from build_docs.py) in a real headless browser.

Serves the site on 127.0.0.1 and, for every page: fetches it (HTTP 200), checks that every internal
<a href>, <img src>, <script src> and <link href> resolves to a file in the site (and every #fragment
to an id on the target page), that nothing is loaded from another host, then opens it in Debian's
chromium (`apt-get install chromium`): the rendered DOM must hold the page's title, formulas must be
typeset by MathJax, and a screenshot (kept in _site/_screenshots/) must not be blank. Exits 1 with
the list of everything broken.

    python tools/check_docs.py [--site _site] [--chromium /usr/bin/chromium]
"""
import argparse, functools, html, http.server, re, subprocess, sys, tempfile, threading, urllib.request
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit

from PIL import Image

CHROMIUM_FLAGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
                  '--disable-background-networking', '--disable-component-update', '--disable-sync',
                  '--hide-scrollbars', '--window-size=1280,1600']


class PageParser(HTMLParser):
    "Collects a page's title, element ids, the URLs it links to or loads, and its prose (for formulas)."
    _skip_text = {'script', 'style', 'pre', 'code', 'title'}

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.title, self.ids, self.refs, self.prose, self._open = '', set(), [], [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for key in ('id', 'name'):
            if attrs.get(key): self.ids.add(attrs[key])
        ref = {'a': 'href', 'img': 'src', 'script': 'src', 'link': 'href'}.get(tag)
        if ref and attrs.get(ref): self.refs.append((tag, attrs[ref]))
        if tag in self._skip_text: self._open.append(tag)

    def handle_endtag(self, tag):
        if tag in self._open: self._open.remove(tag)

    def handle_data(self, data):
        if 'title' in self._open: self.title += data
        elif not self._open: self.prose.append(data)

    def has_math(self):
        "Does the prose hold TeX for MathJax ($...$, $$...$$ or \\(...\\))?"
        return bool(re.search(r'\$[^$\n]+\$|\\\(', ''.join(self.prose)))


def parse(text):
    p = PageParser(); p.feed(text)
    return p


def serve(site):
    "Serve `site` on a free port of 127.0.0.1 in a daemon thread; return the base URL."
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args): pass
    server = http.server.ThreadingHTTPServer(('127.0.0.1', 0), functools.partial(Quiet, directory=str(site)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return f'http://127.0.0.1:{server.server_port}/'


def check_links(site, page, parsed, base):
    "Broken internal references of one page, and anything it would load from another host."
    problems = []
    for tag, ref in parsed.refs:
        url = urlsplit(urljoin(base + page, ref))
        if url.scheme in ('data', 'mailto', 'javascript'): continue
        if url.netloc != urlsplit(base).netloc:  # links out are fine; loading anything from outside is not
            if tag != 'a': problems.append(f'{page}: <{tag}> loads {ref} from the internet')
            continue
        target = site/unquote(url.path).lstrip('/')
        if target.is_dir(): target = target/'index.html'
        if not target.is_file(): problems.append(f'{page}: <{tag}> {ref} -> no such file {target.relative_to(site)}')
        elif url.fragment and target.suffix == '.html':
            if not {url.fragment, unquote(url.fragment)} & _ids(target): problems.append(f'{page}: <{tag}> {ref} -> no id "{url.fragment}" in {target.name}')
    return problems


@functools.lru_cache(maxsize=None)
def _ids(path): return parse(path.read_text(encoding='utf-8')).ids


def chromium(exe, profile, *args, timeout=120):
    cmd = [exe, *CHROMIUM_FLAGS, f'--user-data-dir={profile}', *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def check_in_browser(exe, url, page, title, shot, has_math):
    "Render one page: its DOM must hold `title` (and typeset math), its screenshot must not be blank."
    problems = []
    with tempfile.TemporaryDirectory() as profile:
        # virtual time lets MathJax finish typesetting before the DOM is dumped
        dom = chromium(exe, profile, '--virtual-time-budget=15000', '--dump-dom', url)
    if dom.returncode != 0 or not dom.stdout.strip(): return [f'{page}: chromium could not render it: {dom.stderr.strip()[-300:]}']
    if html.escape(title, quote=False) not in dom.stdout and title not in dom.stdout: problems.append(f'{page}: rendered DOM lacks the title "{title}"')
    if has_math and 'MathJax_CHTML' not in dom.stdout: problems.append(f'{page}: formulas were not typeset (is MathJax loading?)')
    with tempfile.TemporaryDirectory() as profile:
        res = chromium(exe, profile, f'--screenshot={shot}', url)
    if res.returncode != 0 or not shot.exists(): return problems + [f'{page}: no screenshot: {res.stderr.strip()[-300:]}']
    with Image.open(shot) as img:
        colours = img.convert('RGB').getcolors(maxcolors=16)
    if colours is not None and len(colours) < 4: problems.append(f'{page}: screenshot {shot} is blank ({len(colours)} colour(s))')
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--site', default='_site', help='the folder build_docs.py wrote')
    parser.add_argument('--chromium', default='/usr/bin/chromium', help='browser executable')
    args = parser.parse_args()
    site = Path(args.site).resolve()
    pages = sorted(p.name for p in site.glob('*.html'))
    if not pages: sys.exit(f'no pages in {site}: run `python tools/build_docs.py` first')
    if not Path(args.chromium).exists(): sys.exit(f'{args.chromium} not found: apt-get install -y chromium')
    shots = site/'_screenshots'
    shots.mkdir(exist_ok=True)
    base, problems = serve(site), []
    for page in pages:
        with urllib.request.urlopen(base + page) as resp:
            status, text = resp.status, resp.read().decode('utf-8')
        if status != 200:
            problems.append(f'{page}: HTTP {status}'); continue
        parsed = parse(text)
        page_problems = check_links(site, page, parsed, base)
        page_problems += check_in_browser(args.chromium, base + page, page, parsed.title.strip(),
                                          shots/(Path(page).stem + '.png'), parsed.has_math())
        print(f"{'ok  ' if not page_problems else 'FAIL'} {page} ({parsed.title.strip()}, {len(parsed.refs)} links)")
        problems += dict.fromkeys(page_problems)  # a broken link used three times is one problem
    if problems:
        print(f'\n{len(problems)} problem(s) in the docs site:', *problems, sep='\n  ')
        sys.exit(1)
    print(f'all {len(pages)} pages load, render and have no broken internal links or images; screenshots in {shots}')


if __name__ == '__main__': main()

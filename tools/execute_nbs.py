"""Run notebooks top to bottom and save their outputs in place: the outputs the documentation shows.

Cells are skipped exactly as `nbdev_test` skips them: cells flagged with a test flag from settings.ini
(`tst_flags`, e.g. `#| slow`) unless the flag is passed with --flags, cells marked `#| eval: false`, and
the `nbdev_export()` cell. A skipped cell keeps the outputs it had. Execution stops at the first error
and the notebook is left unchanged. `nbdev_clean` runs afterwards, as before a commit.

    python tools/execute_nbs.py nbs/03_completion.ipynb nbs/05_finetune.ipynb
    python tools/execute_nbs.py --flags slow nbs/07b_reproduce.ipynb     # the heavy cells too
    python tools/execute_nbs.py                                     # every notebook
"""
import argparse, os, subprocess, sys, time
from pathlib import Path

from execnb.nbio import read_nb, write_nb
from execnb.shell import CaptureShell
from nbdev.config import get_config
from nbdev.process import extract_directives


def execute(path: Path, run_flags: set, tst_flags: set) -> float:
    "Execute one notebook in its own folder and write it back with outputs; returns the seconds it took."
    skip = tst_flags - run_flags
    def no_eval(cell):  # nbdev_test's rule, on nbdev's own reading of the `#|` directives
        if cell.cell_type != 'code' or 'nbdev_export' + '(' in cell.source: return True
        directives = extract_directives(cell, remove=False)
        return bool(skip & directives.keys()) or directives.get('eval:', [''])[0].lower() == 'false'
    nb, shell, start = read_nb(path), CaptureShell(path), time.time()
    cwd = os.getcwd()
    try:
        os.chdir(path.parent)
        shell.run_all(nb, exc_stop=True, preproc=no_eval)
    except Exception:
        sys.stderr.write(shell.prettytb(fname=path) + '\n')
        raise SystemExit(f'{path}: execution failed; the notebook was not changed')
    finally: os.chdir(cwd)
    write_nb(nb, path)
    return time.time() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('notebooks', nargs='*', help='notebooks to run (default: all in nbs/)')
    parser.add_argument('--flags', default='', help='test flags whose cells run too, e.g. "slow"')
    args = parser.parse_args()
    cfg = get_config()
    tst_flags = set(cfg.get('tst_flags', '').split())
    unknown = set(args.flags.split()) - tst_flags
    if unknown: raise SystemExit(f'unknown flags {sorted(unknown)}: settings.ini declares {sorted(tst_flags)}')
    paths = [Path(p).resolve() for p in args.notebooks] or sorted(Path(cfg.nbs_path).glob('*.ipynb'))
    for path in paths:
        if not path.is_file(): raise SystemExit(f'no such notebook: {path}')
        print(f'{path.name}: {execute(path, set(args.flags.split()), tst_flags):.0f} s', flush=True)
    subprocess.run(['nbdev_clean'], check=True)


if __name__ == '__main__': main()

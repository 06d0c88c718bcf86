"""A/B of two fastrnn builds: alternating processes, medians per measurement.

    python tools/ab_builds.py [--rounds N] BASE_DIR NEW_DIR SCRIPT [ARGS...]

BASE_DIR and NEW_DIR each hold an installed `fastrnn/` package, e.g. from
`pip install --no-build-isolation --no-deps --target BASE_DIR .` on two checkouts.
SCRIPT prints `name=value` tokens, each name once (milliseconds, say). Every process runs
it once, the two builds alternate for --rounds rounds, and per name the two medians,
their ratio and the range of the per-round ratios (round r runs both builds back to
back) are printed.

Three traps this avoids:
- An editable install (`pip install -e .`) puts a finder on sys.meta_path, from a .pth
  file, that maps `import fastrnn` to the working tree whatever PYTHONPATH says: an A/B
  that only sets PYTHONPATH measures the same build twice. The script therefore runs
  under `python -S` (no .pth files) with the package dir, then site-packages, put on
  sys.path by hand, and checks which `_core` it imported. A Python process that SCRIPT
  starts itself (subprocess, mpiexec) gets neither; multiprocessing children do.
- Two dirs holding the same `_core` binary are refused (--allow-identical runs them
  anyway, to see the noise of the method).
- Each process imports a fresh copy of its package, so the .so lands at new physical
  pages each time, for both builds alike (two venvs with byte-identical builds once
  measured 9% apart, one of them always the faster).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

# name=value with value a plain decimal float; the name starts with a letter.
TOKEN = re.compile(r"(?<!\S)([A-Za-z_][\w.]*)=([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)(?!\S)")


def core_digest(package_dir: Path) -> str:
    cores = sorted((package_dir / "fastrnn").glob("_core*"))
    if not cores:
        raise SystemExit(f"{package_dir}: no installed fastrnn/ package with a _core here")
    return hashlib.sha256(cores[0].read_bytes()).hexdigest()


def run_once(package_dir: Path, script: Path, args: list[str]) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="ab_"))
    try:
        shutil.copytree(package_dir / "fastrnn", tmp / "fastrnn")
        site = sysconfig.get_paths()["purelib"]
        boot = (
            f"import sys; sys.path[:0] = [{str(tmp)!r}, {str(script.parent)!r}]; "
            f"sys.path.append({site!r}); sys.argv = [{str(script)!r}] + {args!r}; "
            f"import fastrnn._core as c; assert c.__file__.startswith({str(tmp)!r}), c.__file__; "
            f"import runpy; runpy.run_path({str(script)!r}, run_name='__main__')"
        )
        proc = subprocess.run([sys.executable, "-S", "-c", boot], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{package_dir}: {script} failed:\n{proc.stderr}")
        return proc.stdout
    finally:
        shutil.rmtree(tmp)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rounds", type=int, default=8, help="processes per build")
    p.add_argument("--allow-identical", action="store_true",
                   help="run even when both dirs hold the same _core binary")
    p.add_argument("base", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("script", type=Path)
    p.add_argument("args", nargs=argparse.REMAINDER)
    a = p.parse_args()
    if core_digest(a.base) == core_digest(a.new) and not a.allow_identical:
        raise SystemExit("both dirs hold the same _core binary (--allow-identical to run anyway)")
    script = a.script.resolve()
    values: dict[str, dict[str, list[float]]] = {"base": {}, "new": {}}
    for r in range(a.rounds):
        for name in ("base", "new") if r % 2 == 0 else ("new", "base"):
            for key, v in TOKEN.findall(run_once(getattr(a, name), script, a.args)):
                values[name].setdefault(key, []).append(float(v))
    for key in sorted(values["base"].keys() | values["new"].keys()):
        base, new = values["base"].get(key, []), values["new"].get(key, [])
        if len(base) != len(new):
            print(f"{key}: {len(base)} base values against {len(new)} new: skipped")
            continue
        b, n = statistics.median(base), statistics.median(new)
        if b == 0 or 0 in base:  # a count that can be 0 (page faults, say) has no ratio
            print(f"{key:32s} base {b:10.4g}  new {n:10.4g}")
            continue
        per_round = [y / x for x, y in zip(base, new)]
        print(f"{key:32s} base {b:10.4g}  new {n:10.4g}  new/base {n / b:.3f}"
              f"  (rounds {min(per_round):.3f}-{max(per_round):.3f})")


if __name__ == "__main__":
    main()

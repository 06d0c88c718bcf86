"""A/B of two fastrnn builds: alternating processes, medians per measurement.

    python tools/ab_builds.py [--rounds N] BASE_DIR NEW_DIR SCRIPT [ARGS...]

BASE_DIR and NEW_DIR each hold an installed `fastrnn/` package, e.g. from
`pip install --no-build-isolation --no-deps --target BASE_DIR .` on two checkouts.
SCRIPT prints `name=value` tokens (milliseconds, say); every process runs it once, the
two builds alternate for --rounds rounds, and the medians and their ratio are printed.

Two traps this avoids:
- An editable install (`pip install -e .`) puts a finder on sys.meta_path, from a .pth
  file, that maps `import fastrnn` to the working tree whatever PYTHONPATH says: an A/B
  that only sets PYTHONPATH measures the same build twice. The script therefore runs
  under `python -S` (no .pth files) and puts the package dir, then site-packages, on
  sys.path by hand, and checks which `_core` it imported.
- Each process imports a fresh copy of its package, so neither build keeps the page
  cache's warm copy of the .so (two venvs with byte-identical builds once measured 9%
  apart).
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path


def run_once(package_dir: Path, script: str, args: list[str]) -> str:
    tmp = Path(tempfile.mkdtemp(prefix="ab_"))
    try:
        shutil.copytree(package_dir / "fastrnn", tmp / "fastrnn")
        site = sysconfig.get_paths()["purelib"]
        boot = (
            f"import sys; sys.path[:0] = [{str(tmp)!r}]; sys.path.append({site!r}); "
            f"sys.argv = [{script!r}] + {args!r}; import fastrnn._core as c; "
            f"assert c.__file__.startswith({str(tmp)!r}), c.__file__; "
            f"import runpy; runpy.run_path({script!r}, run_name='__main__')"
        )
        proc = subprocess.run([sys.executable, "-S", "-c", boot], capture_output=True, text=True)
        if proc.returncode:
            raise SystemExit(f"{package_dir}: {script} failed:\n{proc.stderr}")
        return proc.stdout
    finally:
        shutil.rmtree(tmp)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("base", type=Path)
    p.add_argument("new", type=Path)
    p.add_argument("script")
    p.add_argument("args", nargs=argparse.REMAINDER)
    p.add_argument("--rounds", type=int, default=8, help="processes per build")
    a = p.parse_args()
    for d in (a.base, a.new):
        if not (d / "fastrnn" / "__init__.py").is_file():
            raise SystemExit(f"{d}: no installed fastrnn/ package here")
    values: dict[str, dict[str, list[float]]] = {"base": {}, "new": {}}
    for r in range(a.rounds):
        for name in ("base", "new") if r % 2 == 0 else ("new", "base"):
            out = run_once(getattr(a, name), a.script, a.args)
            for key, v in re.findall(r"(\S+)=([-+0-9.eE]+)", out):
                values[name].setdefault(key, []).append(float(v))
    for key, base in values["base"].items():
        new = values["new"].get(key)
        if not new:
            continue
        b, n = statistics.median(base), statistics.median(new)
        print(f"{key:32s} base {b:10.4g}  new {n:10.4g}  new/base {n / b:.3f}")


if __name__ == "__main__":
    main()

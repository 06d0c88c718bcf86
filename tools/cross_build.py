"""Compiles fastrnn for 64-bit ARM Linux (aarch64), NEON kernels included, on any host.

    python tools/cross_build.py [--build-dir DIR]

This x86 machine cannot run the NEON kernels, but it can build them: the project's own
CMakeLists.txt configures for an aarch64 target (so it picks the neon + generic kernel
set, as on a real ARM machine) with FASTRNN_WERROR=ON, and every core, kernel and
binding source is compiled with clang from the `ziglang` package. Nothing is linked:
linking would first build libc++ for the target (a minute), and an object per source
already proves that the code compiles. Prints the objects of each kernel ISA.

Needs the `cross` extra: pip install ".[cross]" (ziglang, cmake, ninja, pybind11).
tests/test_cross_build.py runs it, and skips without them.

What it does not check, by construction: anything that links (CMake's try_compile
probes build static libraries, and pybind11's LTO probes are answered "no": a future
link-dependent check_* in CMakeLists.txt would pass here unexamined); the OpenMP code
(zig has no OpenMP runtime for the target); the bindings compile against the host
Python's headers (the same for any 64-bit Linux).
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TARGET = "aarch64-linux-gnu"
EM_AARCH64 = 183  # ELF e_machine

# The compiler for CMake: clang through zig, for the target. Only CMake's compiler
# identification links, and -nostdlib++ spares that link zig's build of libc++ for the
# target (a minute); compiles keep libc++'s headers.
WRAPPER = """#!/bin/sh
for a in "$@"; do
  [ "$a" = "-c" ] && exec "{py}" -m ziglang c++ -target {target} "$@"
done
exec "{py}" -m ziglang c++ -target {target} -nostdlib++ "$@"
"""


def _find(name: str) -> str | None:
    """An executable from this interpreter's environment first, then PATH."""
    here = Path(sys.executable).parent / name
    return str(here) if here.exists() else shutil.which(name)


def missing_tools() -> list[str]:
    """What the cross build needs and this environment lacks (the `cross` extra has all)."""
    missing = [name for name in ("cmake", "ninja") if not _find(name)]
    for module in ("ziglang", "pybind11"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    return missing


def _tool(name: str) -> str:
    found = _find(name)
    if not found:
        raise SystemExit(f"cross_build: no `{name}` (pip install '.[cross]')")
    return found


def _script(path: Path, text: str) -> str:
    path.write_text(text)
    path.chmod(0o755)
    return str(path)


def _run(cmd: list[str], cwd: Path) -> None:
    done = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:3])} ... failed:\n{done.stdout}\n{done.stderr}")


def cross_build(build_dir: Path) -> dict[str, list[Path]]:
    """Configures and compiles in build_dir; returns the object files per kernel ISA."""
    import pybind11  # the headers the bindings compile against

    build_dir.mkdir(parents=True, exist_ok=True)
    py = sys.executable
    cxx = _script(build_dir / "cxx", WRAPPER.format(py=py, target=TARGET))
    ar = _script(build_dir / "ar", f'#!/bin/sh\nexec "{py}" -m ziglang ar "$@"\n')
    ranlib = _script(build_dir / "ranlib", f'#!/bin/sh\nexec "{py}" -m ziglang ranlib "$@"\n')
    cmake, ninja = _tool("cmake"), _tool("ninja")
    _run(
        [
            cmake, "-S", str(ROOT), "-B", str(build_dir / "build"), "-G", "Ninja",
            f"-DCMAKE_MAKE_PROGRAM={ninja}",
            "-DCMAKE_SYSTEM_NAME=Linux", "-DCMAKE_SYSTEM_PROCESSOR=aarch64",
            f"-DCMAKE_CXX_COMPILER={cxx}", f"-DCMAKE_AR={ar}", f"-DCMAKE_RANLIB={ranlib}",
            # No linking at configure time either: try_compile builds static libraries,
            # and pybind11's LTO probes (which link) are answered "no" up front.
            "-DCMAKE_TRY_COMPILE_TARGET_TYPE=STATIC_LIBRARY",
            "-DHAS_FLTO_THIN=0", "-DHAS_FLTO_AUTO=0", "-DHAS_FLTO=0",
            f"-DPython_EXECUTABLE={py}", f"-Dpybind11_DIR={pybind11.get_cmake_dir()}",
            "-DFASTRNN_OPENMP=OFF",  # zig ships no OpenMP runtime for the target
            "-DFASTRNN_WERROR=ON",
        ],
        cwd=build_dir,
    )
    objdir = build_dir / "build" / "CMakeFiles"
    _run([ninja, "-C", str(build_dir / "build"), "fastrnn_core",
          "CMakeFiles/_core.dir/csrc/bindings.cpp.o"], cwd=build_dir)
    objects = {}
    for d in sorted(objdir.glob("fastrnn_kernels_*.dir")):
        isa = d.name[len("fastrnn_kernels_"):-len(".dir")]
        objects[isa] = sorted(d.rglob("*.o"))
    objects["core"] = sorted((objdir / "fastrnn_core.dir").rglob("*.o"))
    objects["bindings"] = sorted((objdir / "_core.dir").rglob("*.o"))
    return objects


def elf_machine(path: Path) -> int:
    """e_machine of an ELF object (little-endian, 64-bit)."""
    head = path.read_bytes()[:20]
    if head[:4] != b"\x7fELF":
        raise ValueError(f"{path}: not an ELF file")
    return int.from_bytes(head[18:20], "little")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--build-dir", type=Path, help="keep the build here (default: a temp dir)")
    args = ap.parse_args()
    if missing_tools():
        raise SystemExit(f"cross_build: missing {', '.join(missing_tools())}"
                         " (pip install '.[cross]')")

    def report(objects: dict[str, list[Path]]) -> None:
        for isa, objs in objects.items():
            machines = {elf_machine(o) for o in objs}
            arch = "aarch64" if machines == {EM_AARCH64} else f"e_machine {sorted(machines)}"
            print(f"{isa:9s} {len(objs):2d} objects, {arch}: {' '.join(o.stem for o in objs)}")

    if args.build_dir:
        report(cross_build(args.build_dir))
        return
    with tempfile.TemporaryDirectory() as tmp:
        report(cross_build(Path(tmp)))


if __name__ == "__main__":
    main()

"""The NEON kernels, which this x86 machine cannot run, still compile: the whole project
is built for aarch64 Linux by tools/cross_build.py (clang from the `ziglang` package,
the project's CMakeLists.txt, warnings as errors)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tools"))

import cross_build  # noqa: E402

KERNEL_SOURCES = sorted(p.name for p in (ROOT / "csrc" / "kernels").glob("*.cpp"))
CORE_SOURCES = sorted(p.name for p in (ROOT / "csrc" / "core").glob("*.cpp")) + ["dispatch.cpp"]


def test_every_source_compiles_for_aarch64_with_neon_kernels(tmp_path):
    missing = cross_build.missing_tools()
    if missing:
        pytest.skip(f"no {', '.join(missing)}: the cross build needs pip install '.[cross]'")
    objects = cross_build.cross_build(tmp_path)

    # An ARM build carries the neon and generic kernel sets, each compiled from every
    # kernel source, and no x86 set.
    assert sorted(k for k in objects if k not in ("core", "bindings")) == ["generic", "neon"]
    for isa in ("generic", "neon"):
        assert sorted(o.name[: -len(".o")] for o in objects[isa]) == KERNEL_SOURCES
    assert sorted(o.name[: -len(".o")] for o in objects["core"]) == sorted(CORE_SOURCES)
    assert [o.name for o in objects["bindings"]] == ["bindings.cpp.o"]
    for objs in objects.values():
        for o in objs:
            assert cross_build.elf_machine(o) == cross_build.EM_AARCH64, o
    # Each set is compiled into its own namespace (isa.h), so the NEON objects define
    # fastrnn::kernels::neon symbols and the generic ones do not.
    table = {isa: next(o for o in objects[isa] if o.name == "table.cpp.o").read_bytes()
             for isa in ("generic", "neon")}
    assert b"7kernels4neon" in table["neon"] and b"7kernels4neon" not in table["generic"]

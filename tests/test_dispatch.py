"""ISA selection: FASTRNN_ISA can only lower the choice; build_info reports it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

import fastrnn
from fastrnn import _core


def info_with_env(**env):
    code = "import json, fastrnn; print(json.dumps(fastrnn.build_info()))"
    out = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout)


def test_build_info_fields():
    info = fastrnn.build_info()
    assert set(info) >= {"version", "compiler", "build_type", "isa", "openmp", "num_threads"}
    assert info["version"] == fastrnn.__version__
    assert info["isa"] in info["supported_isas"]
    assert "generic" in info["supported_isas"]
    assert info["num_threads"] >= 1


def test_default_is_the_best_supported_isa():
    info = info_with_env(FASTRNN_ISA="")
    assert info["isa"] == info["supported_isas"][-1]


@pytest.mark.parametrize("name", _core.supported_isas())
def test_env_lowers_to_any_supported_isa(name):
    assert info_with_env(FASTRNN_ISA=name)["isa"] == name


def test_env_cannot_raise_past_the_cpu():
    unsupported = [n for n in ("generic", "avx2", "avx512", "neon") if n not in _core.supported_isas()]
    best = _core.supported_isas()[-1]
    for name in unsupported:
        assert info_with_env(FASTRNN_ISA=name)["isa"] == best


def test_select_isa_rejects_unknown_and_unsupported():
    with pytest.raises(ValueError, match="FASTRNN_ISA must be one of"):
        _core.select_isa("sse9")
    unsupported = [n for n in ("avx2", "avx512", "neon") if n not in _core.supported_isas()]
    for name in unsupported:
        with pytest.raises(ValueError, match="not supported"):
            _core.select_isa(name)


def test_import_works_outside_the_checkout(tmp_path):
    out = subprocess.run(
        [sys.executable, "-c", "import fastrnn, os; print(fastrnn.__file__)"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert "fastrnn" in out.stdout

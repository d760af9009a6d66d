"""The wheel, as a user gets it: built from this checkout, installed into a fresh virtual
environment, and run there (``--help`` and a one-epoch training).

Reinstalling torch & co. into the fresh environment would take minutes, so it gets the
current environment's packages without copying them: the wheel is installed with
``--no-deps`` and a ``.pth`` file appends this environment's site-packages to ``sys.path``.
Lines of a ``.pth`` file are appended after the fresh environment's own site-packages (so the
wheel's copy of facekeypoints wins), and ``.pth`` files inside an appended directory are not
processed, so the editable install of the source tree (``__editable__*.pth`` here) stays off;
``test_fresh_venv_imports_the_wheel_copy`` checks both.

The wheel is built without build isolation (the test extra brings setuptools): about 2 s,
against about 4 s with isolation, which also needs an index. Deselect with ``-m "not slow"``.
"""
from __future__ import annotations

import json
import os
import shutil
import site
import subprocess
import sys
import sysconfig
import zipfile
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src"
#: Left out of the copy the wheel is built from: environments, caches, outputs.
IGNORE = shutil.ignore_patterns(".git", ".venv", "venv", ".tox", "build", "dist", "runs", "out",
                                "*.egg-info", "__pycache__", ".pytest_cache", ".hypothesis",
                                ".ruff_cache", "*.pyc")


def _run(cmd, cwd, timeout=300, env=None):
    result = subprocess.run([str(c) for c in cmd], cwd=cwd, capture_output=True, text=True,
                            timeout=timeout, env=env)
    assert result.returncode == 0, (
        f"{' '.join(map(str, cmd))} exited with {result.returncode}\n"
        f"--- stdout\n{result.stdout[-4000:]}\n--- stderr\n{result.stderr[-4000:]}")
    return result


def _clean_env(**extra):
    """The test's environment without anything that would point Python at other code."""
    env = {k: v for k, v in os.environ.items()
           if k not in ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV",
                        "PYTHONSAFEPATH", "__PYVENV_LAUNCHER__")}
    env.update(PYTHONNOUSERSITE="1", MPLBACKEND="Agg", **extra)
    return env


def _this_env_site_packages():
    dirs = list(dict.fromkeys([sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"],
                               *site.getsitepackages()]))
    return [d for d in dirs if Path(d).is_dir()]


@pytest.fixture(scope="module")
def fresh(tmp_path_factory):
    """Build the wheel from a copy of the checkout; install it into a fresh venv."""
    tmp = tmp_path_factory.mktemp("wheel")
    # A copy, so that the build's build/ and *.egg-info never land in (or come stale from) the
    # source tree that other runs may be using.
    tree = tmp / "tree"
    shutil.copytree(ROOT, tree, ignore=IGNORE)
    dist = tmp / "dist"
    _run([sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-build-isolation",
          "--no-index", "-w", dist, tree], cwd=tmp, env=_clean_env())
    wheels = list(dist.glob("facekeypoints-*.whl"))
    assert len(wheels) == 1, wheels

    venv = tmp / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", venv], cwd=tmp, env=_clean_env())
    python = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    # This environment's pip, acting on the fresh one (which has no pip of its own). Installed
    # before the .pth exists, so pip sees an empty environment.
    _run([sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
          "--no-index", wheels[0]], cwd=tmp, env=_clean_env())
    purelib = Path(_run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                         "['purelib'])"], cwd=tmp, env=_clean_env()).stdout.strip())
    deps = _this_env_site_packages()
    (purelib / "_facekeypoints_test_deps.pth").write_text("".join(f"{d}\n" for d in deps))
    script = venv / ("Scripts/facekeypoints.exe" if os.name == "nt" else "bin/facekeypoints")
    return dict(tmp=tmp, wheel=wheels[0], python=python, script=script, purelib=purelib,
                deps=deps)


def test_wheel_holds_license_and_py_typed(fresh):
    with zipfile.ZipFile(fresh["wheel"]) as whl:
        names = set(whl.namelist())
        metadata = whl.read(next(n for n in names if n.endswith(".dist-info/METADATA")))
    dist_info = next(n.split("/")[0] for n in names if ".dist-info/" in n)
    assert "facekeypoints/py.typed" in names
    assert f"{dist_info}/licenses/LICENSE" in names, sorted(n for n in names if "dist-info" in n)
    assert "MIT License" in (ROOT / "LICENSE").read_text()
    text = metadata.decode()
    assert "License-Expression: MIT" in text and "License-File: LICENSE" in text
    for dep in ("tabulate", "joblib"):
        assert f"Requires-Dist: {dep}" in text
    assert not any(n.startswith(("tests/", "src/")) for n in names)


def test_fresh_venv_imports_the_wheel_copy(fresh):
    code = ("import json, sys, facekeypoints, torch, importlib.metadata as md; "
            "print(json.dumps({'path': sys.path, 'fk': facekeypoints.__file__, "
            "'torch': torch.__file__, "
            "'dist': str(md.distribution('facekeypoints').locate_file(''))}))")
    out = json.loads(_run([fresh["python"], "-c", code], cwd=fresh["tmp"],
                          env=_clean_env()).stdout)
    purelib = fresh["purelib"].resolve()
    # the wheel's copy, not the source tree nor this environment's editable install
    assert Path(out["fk"]).resolve().is_relative_to(purelib), out["fk"]
    assert Path(out["dist"]).resolve() == purelib
    # the .pth's line was appended after the venv's own site-packages, and the .pth files in
    # that appended directory (the editable install's) were not processed
    path = [str(Path(p).resolve()) for p in out["path"] if p]
    deps = [str(Path(d).resolve()) for d in fresh["deps"]]
    assert all(d in path for d in deps)
    assert path.index(str(purelib)) < min(path.index(d) for d in deps)
    assert str(SRC.resolve()) not in path
    assert not any("__editable__" in p for p in path)
    # the dependencies come from this environment, without a copy
    assert any(Path(out["torch"]).resolve().is_relative_to(d) for d in deps), out["torch"]


def test_fresh_venv_runs_help_and_one_epoch(fresh):
    script, tmp = fresh["script"], fresh["tmp"]
    env = _clean_env()
    help_text = _run([script, "--help"], cwd=tmp, env=env).stdout
    for command in ("train", "evaluate", "predict", "sweep", "make-data"):
        assert command in help_text

    data, out = tmp / "data", tmp / "run"
    _run([script, "make-data", data, "--train", "200", "--test", "8"], cwd=tmp, env=env)
    assert (data / "training.csv").is_file()
    result = _run([script, "train", "net1", "--data", data / "training.csv", "--max-epochs", "1",
                   "--out", out, "--device", "cpu"], cwd=tmp, env=env)
    assert "net1: 1 epochs" in result.stdout
    assert (out / "model.pt").is_file() and (out / "model.pt").stat().st_size > 0
    assert json.loads((out / "run.json").read_text())["epochs_run"] == 1

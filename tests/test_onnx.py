"""ONNX out: parity with torch (TTA included), metadata, and running without torch."""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import facekeypoints as fk

pytest.importorskip("onnx")
pytest.importorskip("onnxruntime")

from facekeypoints.cli import main  # noqa: E402
from facekeypoints.onnxmodel import OnnxKeypointNet, OnnxModelError  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    net = fk.pretrained()
    path = tmp_path_factory.mktemp("onnx") / "modern.onnx"
    fk.export_onnx(net, path)
    return net, path


def test_onnxruntime_matches_torch_on_200_faces_with_and_without_tta(exported, default_data):
    net, path = exported
    X, _ = fk.load2d()
    X = X[:200]
    model = OnnxKeypointNet(path)
    for tta in (False, True):
        diff = np.abs(model.predict(X, tta=tta) - net.predict(X, tta=tta)).max()
        assert diff < 1e-4, (tta, diff)
    # the default follows the net's (modern: TTA on), flat rows work, any batch size
    assert model.tta is True
    assert np.abs(model.predict(X[:3].reshape(3, -1)) - net.predict(X[:3])).max() < 1e-4
    assert model.predict(X[:0]).shape == (0, 30)


def test_metadata_names_keypoints_flips_scaling_and_calibration(exported):
    _, path = exported
    model = OnnxKeypointNet(path)
    assert model.layout == fk.layout.KAGGLE
    assert model.columns_ == list(fk.KEYPOINT_COLUMNS)
    assert model.metadata["input"]["shape"] == ["batch", 1, 96, 96]
    assert "[0, 1]" in model.metadata["input"]["scaling"]
    assert set(model.photo_calibration) >= {"dx", "dy", "scale"}


def test_a_file_that_is_not_ours_is_refused_in_one_line(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a model")
    with pytest.raises(OnnxModelError) as info:
        OnnxKeypointNet(bad)
    assert "\n" not in str(info.value) and "bad.onnx" in str(info.value)


def test_export_command_and_predict_photos_with_the_export(tmp_path, capsys):
    out = tmp_path / "m.onnx"
    assert main(["export", "pretrained", "-o", str(out)]) == 0
    assert "wrote" in capsys.readouterr().out
    skdata = pytest.importorskip("skimage.data")
    from PIL import Image

    Image.fromarray(skdata.astronaut()).save(tmp_path / "a.png")
    csv = tmp_path / "faces.csv"
    assert main(["predict-photos", str(out), str(tmp_path / "a.png"), "-o", str(csv),
                 "--quiet"]) == 0
    assert len(csv.read_text().splitlines()) == 2
    assert main(["export", str(tmp_path / "missing.pt"), "-o", str(out)]) == 2


_NO_TORCH = '''import sys
class _NoTorch:
    """This environment has no torch: importing it (or skorch) fails, as uninstalled."""
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("torch", "skorch"):
            raise ModuleNotFoundError(f"No module named {name!r}")
sys.meta_path.insert(0, _NoTorch())
'''


@pytest.mark.slow
def test_a_fresh_venv_without_torch_runs_the_export(tmp_path, exported):
    """The wheel in a fresh venv whose torch and skorch cannot be imported: predict-photos,
    predict and evaluate run on the .onnx file with numpy, onnxruntime, Pillow and OpenCV."""
    import site
    import sysconfig

    _, onnx_path = exported
    tree = tmp_path / "tree"
    shutil.copytree(ROOT, tree, ignore=shutil.ignore_patterns(
        ".git", ".venv", "build", "dist", "runs", "*.egg-info", "__pycache__", ".*cache"))
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env.update(PYTHONNOUSERSITE="1", MPLBACKEND="Agg")

    def run(cmd):
        result = subprocess.run([str(c) for c in cmd], capture_output=True, text=True,
                                cwd=tmp_path, env=env, timeout=300)
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        return result

    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "--no-index", "-w", tmp_path / "dist", tree])
    wheel = next((tmp_path / "dist").glob("facekeypoints-*.whl"))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    run([sys.executable, "-m", "pip", "--python", python, "install", "-q", "--no-deps",
         "--no-index", wheel])
    purelib = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()"
                        "['purelib'])"]).stdout.strip())
    deps = dict.fromkeys([sysconfig.get_paths()["purelib"], *site.getsitepackages()])
    (purelib / "_deps.pth").write_text("".join(f"{d}\n" for d in deps if Path(d).is_dir()))
    (purelib / "_no_torch.py").write_text(_NO_TORCH)
    (purelib / "_aa_no_torch.pth").write_text("import _no_torch\n")
    probe = run([python, "-c", "import importlib.util as u, facekeypoints as fk; "
                               "print(fk.__file__)\ntry:\n import torch\nexcept ImportError:"
                               "\n print('no torch')"]).stdout
    assert "no torch" in probe and str(purelib) in probe

    from PIL import Image
    skdata = pytest.importorskip("skimage.data")
    Image.fromarray(skdata.astronaut()).save(tmp_path / "astronaut.png")
    script = venv / "bin" / "facekeypoints"
    run([script, "predict-photos", onnx_path, tmp_path / "astronaut.png", "-o",
         tmp_path / "faces.json", "--quiet"])
    (face,) = json.loads((tmp_path / "faces.json").read_text())
    assert len(face["keypoints"]) == 15
    run([script, "make-data", tmp_path / "data", "--train", "30", "--test", "4"])
    run([script, "predict", onnx_path, "--test", tmp_path / "data" / "test.csv", "-o",
         tmp_path / "sub.csv"])
    assert (tmp_path / "sub.csv").read_text().startswith("RowId,Location")
    evaluated = run([script, "evaluate", onnx_path, "--data", tmp_path / "data" / "training.csv",
                     "--json"])
    assert json.loads(evaluated.stdout)["rmse_px"] > 0

"""Hostile input to the surfaces added with issue 25's pass: photos, ONNX files, model files
that are not regular files, metrics on non-finite predictions, loggers whose folder vanishes
mid-run, and lr_find on no data. Each gives one clear line, never a hang or a traceback."""
import json
import os
import shutil
import warnings

import numpy as np
import pytest

from facekeypoints import metrics
from facekeypoints.photos import PhotoError, read_photo

from .conftest import tiny_data, tiny_net


def test_photo_symlink_loop_dangling_link_and_fifo_are_named(tmp_path):
    os.symlink(tmp_path / "b.jpg", tmp_path / "a.jpg")
    os.symlink(tmp_path / "a.jpg", tmp_path / "b.jpg")
    os.symlink(tmp_path / "missing.jpg", tmp_path / "dangling.jpg")
    os.mkfifo(tmp_path / "pipe.jpg")
    for name, words in (("a.jpg", "symbolic link loop"), ("dangling.jpg", "broken symbolic"),
                        ("pipe.jpg", "not a regular file")):
        with pytest.raises(PhotoError, match=words):
            read_photo(tmp_path / name)


def test_model_file_that_is_a_fifo_is_refused_without_blocking(tmp_path):
    from facekeypoints.persist import ModelFileError, read_model_file

    os.mkfifo(tmp_path / "model.pt")
    with pytest.raises(ModelFileError, match="not a regular file"):
        read_model_file(tmp_path / "model.pt")


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    pytest.importorskip("onnxruntime")
    onnx = pytest.importorskip("onnx")
    import facekeypoints as fk

    path = tmp_path_factory.mktemp("onnx") / "p.onnx"
    fk.export_onnx(fk.pretrained(), path)
    return onnx, path


def _with_metadata(onnx, src, dst, **changes):
    m = onnx.load(str(src))
    props = {p.key: p.value for p in m.metadata_props}
    props.update({f"facekeypoints.{k}": v for k, v in changes.items()})
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(dst))
    return props


def _forged(onnx, props, dst, in_shape, out_name, out_shape):
    from onnx import TensorProto, helper

    g = helper.make_graph([helper.make_node("Identity", ["faces"], [out_name])], "g",
                          [helper.make_tensor_value_info("faces", TensorProto.FLOAT, in_shape)],
                          [helper.make_tensor_value_info(out_name, TensorProto.FLOAT,
                                                         out_shape)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(dst))


def test_onnx_metadata_lying_or_a_forged_graph_is_refused_at_load(exported, tmp_path):
    from facekeypoints.onnxmodel import OnnxModelError, load_onnx

    onnx, good = exported
    lay = json.loads({p.key: p.value for p in onnx.load(str(good)).metadata_props}[
        "facekeypoints.layout"])
    cases = {
        "cols": ({"columns": json.dumps(["nose_tip_x", "nose_tip_y"])}, "2 columns"),
        "side": ({"layout": json.dumps({**lay, "image_side": 64})}, "the graph takes"),
        "cal": ({"photo_calibration": json.dumps("hello")}, "photo_calibration"),
        "layout": ({"layout": json.dumps({"names": 5})}, "layout' is damaged"),
    }
    for name, (change, words) in cases.items():
        props = _with_metadata(onnx, good, tmp_path / f"{name}.onnx", **change)
        with pytest.raises(OnnxModelError, match=words):
            load_onnx(tmp_path / f"{name}.onnx")
    _forged(onnx, props, tmp_path / "shape.onnx", ["n", 3, 64, 64], "keypoints",
            ["n", 3, 64, 64])
    _forged(onnx, props, tmp_path / "out.onnx", ["n", 1, 96, 96], "y", ["n", 1, 96, 96])
    _forged(onnx, props, tmp_path / "ident.onnx", ["n", 1, 96, 96], "keypoints",
            ["n", 1, 96, 96])
    for name in ("shape", "out", "ident"):
        _with_metadata(onnx, tmp_path / f"{name}.onnx", tmp_path / f"{name}.onnx",
                       **{k.split(".", 1)[1]: v for k, v in
                          {p.key: p.value for p in onnx.load(str(good)).metadata_props}.items()})
        with pytest.raises(OnnxModelError, match="graph") as info:
            load_onnx(tmp_path / f"{name}.onnx")
        assert "\n" not in str(info.value)


def test_metrics_refuse_nan_predictions_and_name_no_faces():
    y = np.random.default_rng(0).uniform(-0.5, 0.5, (4, 30))
    with pytest.raises(ValueError, match="predictions hold 120 NaN"):
        metrics.nme(y, np.full_like(y, np.nan))
    with pytest.raises(ValueError, match="no faces to measure"):
        metrics.nme(y[:0], y[:0])
    with pytest.raises(ValueError, match="normaliser's keypoints"):
        metrics.nme(np.full_like(y, np.nan), y)


@pytest.mark.parametrize("kind", ["tensorboard", "mlflow"])
def test_a_log_folder_that_vanishes_mid_run_stops_logging_not_training(tmp_path, kind):
    pytest.importorskip(kind)
    from facekeypoints.tracking import MlflowLogger, TensorBoardLogger

    target = tmp_path / "log"
    logger = (TensorBoardLogger(target) if kind == "tensorboard"
              else MlflowLogger(str(target), run_name="t"))

    def vanish(nn, history):
        if len(history) == 1:
            if getattr(logger, "writer", None) is not None:
                logger.writer.flush()      # epoch 1 written first: no race with its thread
            shutil.rmtree(target)
            target.write_text("a file now")

    X, y = tiny_data()
    net = tiny_net(max_epochs=3, callbacks=[("log", logger)], on_epoch_finished=[vanish])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        net.fit(X, y)
    assert len(net.history) == 3
    lost = [str(w.message) for w in caught if "logging stopped" in str(w.message)]
    assert len(lost) == 1 and "training goes on" in lost[0]


def test_lr_find_on_no_faces_is_an_error_not_an_endless_loop():
    from facekeypoints.lr_find import lr_find

    X, y = tiny_data()
    with pytest.raises(ValueError, match="no batch"):
        lr_find(tiny_net(), X[:0], y[:0], steps=5)

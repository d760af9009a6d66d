"""Tests of the synthetic face generator (facekeypoints.synthetic) and its CSV files."""
from __future__ import annotations

import os

import numpy as np
import pandas as pd
import pytest

from facekeypoints import synthetic as syn
from facekeypoints.data import FLIP_INDICES, KEYPOINT_COLUMNS

# Kaggle training.csv means (pixels), for the "fair stand-in" check.
KAGGLE_MEANS = {
    "left_eye_center": (66.4, 37.7), "right_eye_center": (30.3, 37.6),
    "left_eye_inner_corner": (59.2, 37.9), "left_eye_outer_corner": (73.3, 37.7),
    "right_eye_inner_corner": (36.7, 37.9), "right_eye_outer_corner": (22.4, 38.0),
    "left_eyebrow_inner_end": (56.1, 29.3), "left_eyebrow_outer_end": (80.0, 29.6),
    "right_eyebrow_inner_end": (39.3, 29.5), "right_eyebrow_outer_end": (15.9, 30.4),
    "nose_tip": (48.4, 62.7), "mouth_left_corner": (63.3, 75.9),
    "mouth_right_corner": (32.9, 76.2), "mouth_center_top_lip": (48.0, 72.9),
    "mouth_center_bottom_lip": (48.6, 78.97),
}
FEW = ["left_eye_center_x", "left_eye_center_y", "right_eye_center_x", "right_eye_center_y",
       "nose_tip_x", "nose_tip_y", "mouth_center_bottom_lip_x", "mouth_center_bottom_lip_y"]


def col(name):
    return KEYPOINT_COLUMNS.index(name)


@pytest.fixture(scope="module")
def faces():
    return syn.render_faces(96, seed=1)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    d = tmp_path_factory.mktemp("small")
    return d, syn.write_dataset(d, seed=5, n_train=60, n_test=12)


# -- faces and keypoints -----------------------------------------------------------------------

def test_shapes_dtypes_ranges(faces):
    images, kp = faces
    assert images.shape == (96, 96, 96) and images.dtype == np.uint8
    assert kp.shape == (96, 30) and kp.dtype == np.float64
    assert np.isfinite(kp).all()
    assert (kp > 0).all() and (kp < 96).all()
    assert images.reshape(96, -1).std(1).min() > 5       # no blank images
    assert images.min() < 60 and images.max() > 200      # a range of brightness


def test_deterministic_and_independent_of_n():
    a_img, a_kp = syn.render_faces(40, seed=3)
    b_img, b_kp = syn.render_faces(40, seed=3)
    assert np.array_equal(a_img, b_img) and np.array_equal(a_kp, b_kp)
    c_img, c_kp = syn.render_faces(20, seed=3)
    assert np.array_equal(a_img[:20], c_img) and np.array_equal(a_kp[:20], c_kp)
    d_img, d_kp = syn.render_faces(40, seed=4)
    assert not np.array_equal(a_img, d_img) and not np.allclose(a_kp, d_kp)


def test_render_independent_of_chunks_and_threads():
    p = syn.sample_params(50, seed=8)
    assert np.array_equal(syn.render(p, chunk_size=7, workers=1),
                          syn.render(p, chunk_size=32, workers=3))


def test_mean_keypoint_rmse_like_kaggle():
    kp = syn.keypoints(syn.sample_params(600, seed=2))
    rmse = np.sqrt(((kp - kp.mean(0)) ** 2).mean())
    assert 3.0 <= rmse <= 4.0
    for name, (mx, my) in KAGGLE_MEANS.items():
        assert abs(kp[:, col(name + "_x")].mean() - mx) < 1.5, name
        assert abs(kp[:, col(name + "_y")].mean() - my) < 1.5, name


def test_subject_left_is_on_image_right(faces):
    _, kp = faces
    for left, right in [("left_eye_center_x", "right_eye_center_x"),
                        ("left_eye_outer_corner_x", "right_eye_outer_corner_x"),
                        ("left_eyebrow_outer_end_x", "right_eyebrow_outer_end_x"),
                        ("mouth_left_corner_x", "mouth_right_corner_x")]:
        assert (kp[:, col(left)] > kp[:, col(right)] + 10).all()
    assert (kp[:, col("left_eye_center_x")] > 48).mean() > 0.95
    # Outer corners are further out than inner ones, eyebrows above eyes, mouth below nose.
    assert (kp[:, col("left_eye_outer_corner_x")] > kp[:, col("left_eye_inner_corner_x")]).all()
    assert (kp[:, col("left_eyebrow_inner_end_y")] < kp[:, col("left_eye_center_y")]).all()
    assert (kp[:, col("mouth_center_top_lip_y")] > kp[:, col("nose_tip_y")]).all()
    assert (kp[:, col("mouth_center_bottom_lip_y")]
            > kp[:, col("mouth_center_top_lip_y")]).all()


def test_keypoints_mark_visible_features(faces):
    """The pupils are darker than the cheek between eye and mouth corner."""
    images, kp = faces
    n = len(images)
    darker = 0
    for side in ("left", "right"):
        ex, ey = kp[:, col(f"{side}_eye_center_x")], kp[:, col(f"{side}_eye_center_y")]
        mx, my = kp[:, col(f"mouth_{side}_corner_x")], kp[:, col(f"mouth_{side}_corner_y")]
        cx, cy = (ex + mx) / 2, (ey + my) / 2
        i = np.arange(n)
        eye = images[i, ey.astype(int), ex.astype(int)].astype(int)
        cheek = images[i, cy.astype(int), cx.astype(int)].astype(int)
        darker += (eye < cheek).sum()
    assert darker / (2 * n) > 0.9


def test_turned_faces_are_drawn_where_their_keypoints_are():
    """Yaw and pitch at the ends of their ranges: the renderer's inverse of the turn takes
    every keypoint back to its frontal point, and the pupil stays on its keypoint."""
    from facekeypoints.datasets import _head_pose as pose

    p = syn.sample_params(64, seed=5)
    sign = np.where(np.arange(64) % 2 == 0, 1.0, -1.0)
    p = p.replace(yaw=sign * pose.YAW_MAX, pitch=-sign * pose.PITCH_MAX)
    v = p.values
    fp = syn._face_points(v)
    align = tuple(a[:, None] for a in syn._pose_alignment(v, fp))

    def colf(name):
        return np.asarray(v[name], np.float64)[:, None]

    x, y = pose.forward(colf, fp[..., 0], fp[..., 1], align)
    u, w = pose.inverse(colf, x, y, align)
    assert np.abs(u - fp[..., 0]).max() < 0.05 and np.abs(w - fp[..., 1]).max() < 0.05
    frontal = syn.keypoints(p.replace(yaw=0.0, pitch=0.0))
    turned = syn.keypoints(p)
    nose = col("nose_tip_x")
    assert (np.sign(turned[:, nose] - frontal[:, nose]) == sign).mean() > 0.95
    images = syn.render(p.replace(glasses=0.0, hand=0.0, fringe=0.0))
    i = np.arange(64)
    for side in ("left", "right"):
        ex, ey = turned[:, col(f"{side}_eye_center_x")], turned[:, col(f"{side}_eye_center_y")]
        pupil = images[i, ey.astype(int), ex.astype(int)].astype(int)
        ring = np.stack([images[i, (ey + dy).astype(int), (ex + dx).astype(int)]
                         for dx, dy in ((-6, 0), (6, 0), (0, 6))]).astype(int).mean(0)
        assert (pupil < ring).mean() > 0.9, side


def scaled_flip(kp):
    """The library's flip rule on scaled targets: x' = -x, then swap FLIP_INDICES pairs."""
    y = (kp - 48.0) / 48.0
    y[:, 0::2] *= -1
    for a, b in FLIP_INDICES:
        y[:, [a, b]] = y[:, [b, a]]
    return y * 48.0 + 48.0


def test_mirror_params_match_flip_rule():
    p = syn.sample_params(64, seed=7)
    m = syn.mirror(p)
    kp, kp_m = syn.keypoints(p), syn.keypoints(m)
    np.testing.assert_allclose(kp_m, scaled_flip(kp), atol=1e-9)
    np.testing.assert_allclose(syn.flip_keypoints(kp), scaled_flip(kp), atol=1e-9)
    back = syn.mirror(m)
    assert all(np.array_equal(back[k], p[k]) for k in p.names)


def test_mirror_renders_mirrored_image():
    p = syn.sample_params(64, seed=7)
    # Include every occluder so their geometry is checked too.
    p = p.replace(glasses=np.arange(64) % 3 == 0, hand=np.arange(64) % 4 == 1,
                  fringe=np.arange(64) % 5 == 2)
    images = syn.render(p)
    mirrored = syn.render(syn.mirror(p))
    assert np.array_equal(mirrored, images[:, :, ::-1])


def test_feature_windows_do_not_clip(monkeypatch):
    """Features drawn in per-face windows give the same image as drawn on the whole image,
    also with every parameter at the extremes of its range."""
    p = syn.sample_params(256, seed=11)
    rng = np.random.default_rng(0)
    ext = {k: np.where(rng.random(len(p)) < 0.5, v.min(), v.max())
           for k, v in p.values.items() if v.dtype.kind == "f"}
    q = syn.FaceParams.concat([p.take(slice(0, 24)), p.replace(**ext).take(slice(0, 40))])
    windowed = syn.render(q, workers=1)
    monkeypatch.setattr(syn, "_FULL_WINDOWS", True)
    assert np.array_equal(windowed, syn.render(q, workers=1))


# -- gaps ----------------------------------------------------------------------------------------

def test_gap_proportions_like_kaggle():
    n = 1000
    miss = syn.missing_mask(n, seed=3)
    assert miss.shape == (n, 30) and miss.dtype == bool
    assert np.array_equal(miss[:, 0::2], miss[:, 1::2])           # x and y go together
    present = ~miss
    assert abs(present.all(1).mean() - 2140 / 7049) < 0.03
    assert present[:, col("nose_tip_x")].all()
    assert present[:, col("left_eye_center_x")].mean() > 0.99
    assert present[:, col("right_eye_center_x")].mean() > 0.99
    assert present[:, col("mouth_center_bottom_lip_x")].mean() > 0.98
    others = [c for c in KEYPOINT_COLUMNS[0::2] if c not in FEW]
    assert len(others) == 11
    for c in others:
        assert abs(present[:, col(c)].mean() - 2270 / 7049) < 0.03, c
    some = miss[:, [col(c) for c in others]]
    assert some.all(1).sum() / some.any(1).sum() > 0.85            # mostly missing together
    assert np.array_equal(miss, syn.missing_mask(n, seed=3))


# -- files ---------------------------------------------------------------------------------------

def test_training_csv_format(small_set):
    d, paths = small_set
    assert set(paths) == {"training", "test", "lookup"}
    lines = paths["training"].read_text().splitlines()
    assert lines[0] == ",".join(KEYPOINT_COLUMNS) + ",Image"
    assert len(lines) == 61
    n_empty = 0
    for line in lines[1:]:
        fields = line.split(",")
        assert len(fields) == 31
        n_empty += sum(f == "" for f in fields[:30])
        for f in fields[:30]:
            if f:
                float(f)
        pixels = fields[30].split(" ")
        assert len(pixels) == 9216
        values = np.array(pixels, dtype=int)
        assert values.min() >= 0 and values.max() <= 255
        assert all(p == str(int(p)) for p in pixels[:50])             # plain integers
    assert n_empty > 0                                                 # gaps are empty fields


def test_test_and_lookup_format(small_set):
    d, paths = small_set
    test = pd.read_csv(paths["test"])
    assert list(test.columns) == ["ImageId", "Image"]
    assert test["ImageId"].tolist() == list(range(1, 13))
    assert all(len(s.split(" ")) == 9216 for s in test["Image"])
    lookup = pd.read_csv(paths["lookup"])
    assert list(lookup.columns) == ["RowId", "ImageId", "FeatureName", "Location"]
    assert lookup["RowId"].tolist() == list(range(1, len(lookup) + 1))
    assert lookup["Location"].isna().all()
    assert set(lookup["ImageId"]) == set(range(1, 13))
    assert set(lookup["FeatureName"]) <= set(KEYPOINT_COLUMNS)
    sizes = lookup.groupby("ImageId")["FeatureName"].apply(list)
    assert {len(v) for v in sizes} == {8, 30}
    for names in sizes:
        assert names == (list(KEYPOINT_COLUMNS) if len(names) == 30 else FEW)
    assert paths["lookup"].read_text().splitlines()[1] == "1,1," + sizes[1][0] + ","


def test_values_round_trip_through_pandas(small_set):
    d, paths = small_set
    df = pd.read_csv(paths["training"])
    params, images, kp = syn.training_faces(60, seed=5)
    got = df[list(KEYPOINT_COLUMNS)].to_numpy()
    miss = syn.missing_mask(60, seed=5)
    assert np.array_equal(np.isnan(got), miss)
    np.testing.assert_allclose(got[~miss], kp[~miss], atol=1e-5)
    pixels = np.stack([np.array(s.split(" "), dtype=np.uint8) for s in df["Image"]])
    assert np.array_equal(pixels.reshape(-1, 96, 96), images)
    test = pd.read_csv(paths["test"])
    test_pixels = np.stack([np.array(s.split(" "), dtype=np.uint8) for s in test["Image"]])
    assert not np.array_equal(test_pixels[:5], pixels[:5])            # a separate stream


def test_same_seed_byte_identical_files(tmp_path):
    a = syn.write_dataset(tmp_path / "a", seed=9, n_train=25, n_test=4)
    b = syn.write_dataset(tmp_path / "b", seed=9, n_train=25, n_test=4)
    c = syn.write_dataset(tmp_path / "c", seed=10, n_train=25, n_test=4)
    for k in a:
        assert a[k].read_bytes() == b[k].read_bytes()
    assert a["training"].read_bytes() != c["training"].read_bytes()
    assert a["test"].read_bytes() != c["test"].read_bytes()


def test_write_leaves_no_partial_files(tmp_path, monkeypatch):
    paths = syn.write_dataset(tmp_path / "ok", seed=1, n_train=10, n_test=3)
    assert sorted(p.name for p in (tmp_path / "ok").iterdir()) == sorted(
        p.name for p in paths.values())
    # An interruption while writing leaves neither a final nor a temporary file.
    calls = {"n": 0}
    original = syn._image_lines

    def failing(images):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return original(images)

    monkeypatch.setattr(syn, "_image_lines", failing)
    monkeypatch.setattr(syn, "_WRITE_CHUNK", 8)
    with pytest.raises(KeyboardInterrupt):
        syn.write_dataset(tmp_path / "bad", seed=1, n_train=20, n_test=3)
    assert list((tmp_path / "bad").iterdir()) == []


def test_default_data_dir_respects_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path / "fk"))
    v = syn.GENERATOR_VERSION
    assert syn.default_data_dir() == tmp_path / "fk" / f"synthetic-v{v}-seed42"
    monkeypatch.delenv("FACEKEYPOINTS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert syn.default_data_dir(seed=7) == tmp_path / "xdg" / "facekeypoints" / \
        f"synthetic-v{v}-seed7"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert syn.default_data_dir() == tmp_path / "home" / ".cache" / "facekeypoints" / \
        f"synthetic-v{v}-seed42"
    assert syn.default_data_dir(n_train=30, n_test=5).name == f"synthetic-v{v}-seed42-n30-5"


def test_ensure_default_dataset_generates_once(tmp_path, monkeypatch):
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path))
    folder = syn.default_data_dir(n_train=30, n_test=5)
    stale = tmp_path / f".{folder.name}.999.dead.tmp"      # left by a killed run
    stale.mkdir()
    (stale / "training.csv").write_text("half a file")
    paths = syn.ensure_default_dataset(n_train=30, n_test=5)
    assert not stale.exists()
    assert all(p.parent == folder and p.is_file() for p in paths.values())
    assert (folder / "COMPLETE.json").is_file()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".") and p.is_dir()]
    stamp = {k: os.stat(p).st_mtime_ns for k, p in paths.items()}

    def boom(*args, **kwargs):
        raise AssertionError("regenerated an existing data set")

    monkeypatch.setattr(syn, "write_dataset", boom)
    again = syn.ensure_default_dataset(n_train=30, n_test=5)
    assert again == paths
    assert {k: os.stat(p).st_mtime_ns for k, p in again.items()} == stamp
    # A folder without the marker (an interrupted or foreign one) is rebuilt.
    monkeypatch.undo()
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path))
    (folder / "COMPLETE.json").unlink()
    paths = syn.ensure_default_dataset(n_train=30, n_test=5)
    assert (folder / "COMPLETE.json").is_file()
    assert len(pd.read_csv(paths["training"], usecols=["nose_tip_x"])) == 30


def test_summarize(small_set):
    d, paths = small_set
    s = syn.summarize(paths["training"])
    miss = syn.missing_mask(60, seed=5)
    assert s["rows"] == 60
    assert s["complete_rows"] == int((~miss).all(1).sum())
    assert s["present"]["nose_tip_x"] == 60
    present = int((~miss[:, col("left_eye_inner_corner_x")]).sum())
    assert s["present"]["left_eye_inner_corner_x"] == present
    assert 60 < s["mean"]["left_eye_center_x"] < 72
    assert 1 < s["std"]["nose_tip_y"] < 6
    df = pd.read_csv(paths["training"])
    assert syn.summarize(df) == s
    text = str(s)
    assert "complete rows" in text and "mouth_center_bottom_lip_y" in text


def test_plot_faces_draws_grid(faces):
    from facekeypoints.plots import plot_faces

    images, kp = faces
    fig = plot_faces(images[:6], kp[:6], ncols=4)
    axes = [ax for ax in fig.axes if ax.images]
    assert len(axes) == 6
    assert len(axes[0].collections) == 3            # left, right, centre markers
    fig2 = plot_faces(images[:2].reshape(2, -1) / 255.0, (kp[:2] - 48) / 48, scaled=True)
    offsets = np.concatenate([c.get_offsets() for c in fig2.axes[0].collections])
    assert np.allclose(np.sort(offsets[:, 0]), np.sort(kp[0, 0::2]))


def test_shipped_sample_matches_generator(tmp_path):
    """data/sample is what scripts/make_sample_data.py writes (rerun it after changing the
    generator).  Pixels are compared with a small tolerance: float rounding in exp and
    matrix products may differ between CPUs."""
    from pathlib import Path

    sample = Path(__file__).resolve().parents[1] / "data" / "sample"
    if not (sample / "training.csv").is_file():
        pytest.skip("no data/sample in this checkout")
    df = pd.read_csv(sample / "training.csv")
    n_train = len(df)
    n_test = len(pd.read_csv(sample / "test.csv", usecols=["ImageId"]))
    _, images, kp = syn.training_faces(n_train, seed=syn.DEFAULT_SEED)
    got = df[list(KEYPOINT_COLUMNS)].to_numpy()
    miss = syn.missing_mask(n_train, seed=syn.DEFAULT_SEED)
    assert np.array_equal(np.isnan(got), miss)
    np.testing.assert_allclose(got[~miss], kp[~miss], atol=1e-5)
    pixels = np.stack([np.array(s.split(" "), dtype=np.int16) for s in df["Image"]])
    diff = np.abs(pixels - images.reshape(n_train, -1))
    assert diff.max() <= 3 and (diff == 0).mean() > 0.99
    lookup = pd.read_csv(sample / "IdLookupTable.csv")
    expected = syn.lookup_features(n_test, seed=syn.DEFAULT_SEED)
    assert list(zip(lookup["ImageId"], lookup["FeatureName"])) == expected
    total = sum((sample / f).stat().st_size for f in ("training.csv", "test.csv",
                                                      "IdLookupTable.csv"))
    assert total < 2_000_000

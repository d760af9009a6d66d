"""Kaggle CSV <-> arrays: columns, flip pairs, load/load2d, the parse cache, errors, submissions."""
import os

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.utils import shuffle

from facekeypoints import _csv, _csv_cache, data
from facekeypoints.data import (FLIP_INDICES, KEYPOINT_COLUMNS, N_PIXELS, DataFormatError, load,
                                load2d, read_csv, write_submission)

K = len(KEYPOINT_COLUMNS)


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """A private cache folder per test; the user's cache is never touched."""
    folder = tmp_path / "cache"
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(folder))
    return folder / "parsed"


def image(i):
    """A distinct, recognisable 96x96 image for row i (pixel 0 holds i)."""
    rng = np.random.default_rng(i)
    img = rng.integers(0, 256, N_PIXELS)
    img[0] = i
    return img


def write_training(path, keypoints, images=None, columns=KEYPOINT_COLUMNS, sep=" ", newline="\n"):
    """Kaggle training.csv layout: keypoint columns then Image; NaN is written as an empty field."""
    images = [image(i) for i in range(len(keypoints))] if images is None else images
    lines = [",".join(list(columns) + ["Image"])]
    for kp, img in zip(keypoints, images):
        fields = ["" if np.isnan(v) else repr(float(v)) for v in kp]
        lines.append(",".join(fields + [sep.join(str(int(p)) for p in img)]))
    path.write_text(newline.join(lines) + newline)
    return path


def write_test(path, ids, images=None):
    images = [image(i) for i in range(len(ids))] if images is None else images
    lines = ["ImageId,Image"] + [f"{i}," + " ".join(map(str, img)) for i, img in zip(ids, images)]
    path.write_text("\n".join(lines) + "\n")
    return path


def keypoints(n, seed=0):
    return np.random.default_rng(seed).uniform(0, 96, (n, K))


def set_line(path, number, text):
    """Replace file line `number` (1-based)."""
    lines = path.read_text().split("\n")
    lines[number - 1] = text
    path.write_text("\n".join(lines))


def image_text(img):
    return " ".join(map(str, img))


# --------------------------------------------------------------------------------------------
# Columns and flip pairs


def test_keypoint_columns_are_kaggles_30_in_order():
    assert len(KEYPOINT_COLUMNS) == 30 == len(set(KEYPOINT_COLUMNS))
    assert KEYPOINT_COLUMNS[0] == "left_eye_center_x"
    assert KEYPOINT_COLUMNS[1] == "left_eye_center_y"
    assert KEYPOINT_COLUMNS[-2] == "mouth_center_bottom_lip_x"
    assert KEYPOINT_COLUMNS[-1] == "mouth_center_bottom_lip_y"
    assert all(c.endswith(("_x", "_y")) for c in KEYPOINT_COLUMNS)
    assert [c[-1] for c in KEYPOINT_COLUMNS] == ["x", "y"] * 15


def test_flip_pairs_swap_left_with_matching_right():
    assert len(FLIP_INDICES) == 12
    used = [i for pair in FLIP_INDICES for i in pair]
    assert len(used) == len(set(used))
    for left, right in FLIP_INDICES:
        a, b = KEYPOINT_COLUMNS[left], KEYPOINT_COLUMNS[right]
        assert "left" in a and "right" in b
        assert a.replace("left", "right") == b
        assert a[-1] == b[-1]                    # x with x, y with y
    unpaired = {c for i, c in enumerate(KEYPOINT_COLUMNS) if i not in used}
    assert unpaired == {"nose_tip_x", "nose_tip_y", "mouth_center_top_lip_x",
                        "mouth_center_top_lip_y", "mouth_center_bottom_lip_x",
                        "mouth_center_bottom_lip_y"}


# --------------------------------------------------------------------------------------------
# load / load2d


def test_scaling_of_pixels_and_coordinates(tmp_path):
    img = np.arange(N_PIXELS) % 256
    kp = np.array([[0.0, 96.0, 48.0, 72.0, 24.0, 12.0] + [60.0] * (K - 6)])
    X, y = load(write_training(tmp_path / "t.csv", kp, [img]))
    assert X.dtype == np.float32 and y.dtype == np.float32
    assert X.shape == (1, N_PIXELS) and y.shape == (1, K)
    np.testing.assert_array_equal(X[0], img.astype(np.float32) / np.float32(255))
    assert X[0, 0] == 0.0 and X[0, 255] == 1.0 and X[0, 51] == np.float32(0.2)
    np.testing.assert_array_equal(y[0, :6], np.float32([-1.0, 1.0, 0.0, 0.5, -0.5, -0.75]))
    np.testing.assert_array_equal(y[0, 6:], np.float32(0.25))


def test_rows_with_gaps_are_dropped(tmp_path):
    kp = keypoints(6)
    kp[1, 5] = kp[4, 29] = np.nan
    X, y = load(write_training(tmp_path / "t.csv", kp))
    assert len(X) == len(y) == 4
    assert sorted(X[:, 0] * 255) == [0, 2, 3, 5]       # pixel 0 holds the row number


def test_cols_narrows_columns_first_so_more_rows_survive(tmp_path):
    kp = keypoints(5)
    kp[[0, 2, 3], 10:] = np.nan          # only the first 10 columns are complete everywhere
    path = write_training(tmp_path / "t.csv", kp)
    assert len(load(path)[0]) == 2
    cols = ["right_eye_center_y", "left_eye_center_x"]       # any order
    X, y = load(path, cols=cols)
    assert X.shape == (5, N_PIXELS) and y.shape == (5, 2)
    row = (X[:, 0] * 255).round().astype(int)           # which input row each output row is
    np.testing.assert_allclose(y[:, 0], (kp[row, 3] - 48) / 48, rtol=1e-6)
    np.testing.assert_allclose(y[:, 1], (kp[row, 0] - 48) / 48, rtol=1e-6)


def test_shuffle_is_fixed_and_a_permutation(tmp_path):
    kp = keypoints(12)
    path = write_training(tmp_path / "t.csv", kp)
    X1, y1 = load(path)
    X2, y2 = load(path, cache=False)
    np.testing.assert_array_equal(X1, X2)
    np.testing.assert_array_equal(y1, y2)
    order = (X1[:, 0] * 255).round().astype(int)
    assert sorted(order) == list(range(12)) and list(order) != list(range(12))
    # the old recipe: scale, then sklearn's shuffle with random_state=42
    X0 = np.stack([image(i) for i in range(12)]).astype(np.float32) / np.float32(255)
    y0 = ((kp - 48) / 48).astype(np.float32)
    Xs, ys = shuffle(X0, y0, random_state=42)
    np.testing.assert_array_equal(X1, Xs)
    np.testing.assert_array_equal(y1, ys)


def test_load2d_shape(tmp_path):
    path = write_training(tmp_path / "t.csv", keypoints(3))
    X, y = load2d(path)
    assert X.shape == (3, 1, 96, 96) and y.shape == (3, 30)
    np.testing.assert_array_equal(X.reshape(3, -1), load(path)[0])
    X, y = load2d(write_test(tmp_path / "test.csv", [1, 2]), test=True)
    assert X.shape == (2, 1, 96, 96) and y is None


def test_test_file_keeps_order_and_has_no_targets(tmp_path):
    path = write_test(tmp_path / "test.csv", [7, 3, 5, 1])
    X, y = load(path, test=True)
    assert y is None and X.shape == (4, N_PIXELS)
    np.testing.assert_array_equal((X * 255).round(), np.stack([image(i) for i in range(4)]))
    parsed = read_csv(path, test=True)
    assert parsed.keypoints is None and list(parsed.image_ids) == [7, 3, 5, 1]


def test_path_none_uses_the_embedded_dataset(tmp_path, monkeypatch):
    files = {"training": write_training(tmp_path / "training.csv", keypoints(2)),
             "test": write_test(tmp_path / "test.csv", [1, 2, 3])}
    from facekeypoints import synthetic
    assert data._default_dataset is synthetic._default_dataset   # registered on import
    monkeypatch.setattr(synthetic, "ensure_default_dataset", lambda: files)
    assert load()[0].shape == (2, N_PIXELS)
    assert load(test=True)[0].shape == (3, N_PIXELS)


def test_path_none_uses_the_registered_provider(tmp_path, monkeypatch):
    files = {False: write_training(tmp_path / "training.csv", keypoints(2)),
             True: write_test(tmp_path / "test.csv", [1, 2, 3])}
    calls = []

    def provider(test):
        calls.append(test)
        return files[test]
    monkeypatch.setattr(data, "_default_dataset", data._default_dataset)   # restored after
    synthetic_default = data.register_default_dataset(provider)
    assert callable(synthetic_default)
    assert load()[0].shape == (2, N_PIXELS)
    X, y = load2d(test=True)
    assert X.shape == (3, 1, 96, 96) and y is None
    assert calls == [False, True]
    assert data.register_default_dataset(synthetic_default) is provider


def test_path_none_with_no_registered_dataset_says_what_to_do(monkeypatch):
    monkeypatch.setattr(data, "_default_dataset", None)
    for call in (load, load2d, lambda: load(test=True)):
        with pytest.raises(RuntimeError, match=r"none is registered.*path of a Kaggle CSV.*"
                                               r"facekeypoints\.synthetic.*register_default_"):
            call()
    with pytest.raises(TypeError, match="callable provider"):
        data.register_default_dataset("training.csv")


def test_read_csv_keeps_gaps_as_nan_and_order(tmp_path):
    kp = keypoints(3)
    kp[1, 4] = np.nan
    parsed = read_csv(write_training(tmp_path / "t.csv", kp))
    assert parsed.images.dtype == np.uint8 and parsed.images.shape == (3, N_PIXELS)
    np.testing.assert_array_equal(parsed.images, np.stack([image(i) for i in range(3)]))
    np.testing.assert_array_equal(parsed.keypoints, kp)
    assert parsed.columns == KEYPOINT_COLUMNS and parsed.image_ids is None


def test_file_with_some_keypoint_columns(tmp_path):
    cols = ["nose_tip_x", "nose_tip_y"]
    path = write_training(tmp_path / "t.csv", keypoints(3)[:, :2], columns=cols)
    parsed = read_csv(path)
    assert parsed.columns == tuple(cols)
    assert np.isnan(parsed.keypoints[:, 0]).all() and not np.isnan(parsed.keypoints[:, 20]).any()
    assert load(path, cols=cols)[1].shape == (3, 2)
    with pytest.raises(DataFormatError, match="28 of the 30 keypoint columns are missing.*cols="):
        load(path)


@pytest.mark.parametrize("variant", ["crlf", "tabs", "double spaces", "quoted", "floats",
                                     "image first", "bom", "blank lines", "NA spelling"])
def test_irregular_but_valid_files_parse(tmp_path, variant):
    kp, imgs = keypoints(3), [image(i) for i in range(3)]
    kp[2, 7] = np.nan
    path = tmp_path / "t.csv"
    if variant == "crlf":
        write_training(path, kp, imgs, newline="\r\n")
    elif variant == "tabs":
        write_training(path, kp, imgs, sep="\t")
    elif variant == "double spaces":
        write_training(path, kp, imgs, sep="  ")
        set_line(path, 3, path.read_text().split("\n")[2] + "  ")     # trailing spaces
    elif variant == "quoted":                           # quoted header name and Image field
        write_training(path, kp, imgs)
        lines = path.read_text().split("\n")
        head, img = lines[1].rsplit(",", 1)
        lines[1] = f'{head},"{img}"'
        lines[0] = lines[0].replace("left_eye_center_x", '"left_eye_center_x"', 1)
        path.write_text("\n".join(lines))
    elif variant == "floats":
        write_training(path, kp, imgs)
        set_line(path, 2, ",".join(path.read_text().split("\n")[1].split(",")[:-1])
                 + "," + " ".join(f"{p}.0" for p in imgs[0]))
    elif variant == "image first":
        lines = ["Image," + ",".join(KEYPOINT_COLUMNS)]
        for row, img in zip(kp, imgs):
            lines.append(image_text(img) + "," + ",".join("" if np.isnan(v) else str(v)
                                                           for v in row))
        path.write_text("\n".join(lines) + "\n")
    elif variant == "bom":
        write_training(path, kp, imgs)
        path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    elif variant == "blank lines":
        write_training(path, kp, imgs)
        path.write_text(path.read_text().replace("\n", "\n\n", 2) + "\n\n")
    elif variant == "NA spelling":
        write_training(path, kp, imgs)
        text = path.read_text().split("\n")
        text[3] = text[3].replace(",,", ",NA,", 1)
        path.write_text("\n".join(text))
    parsed = read_csv(path, cache=False)
    np.testing.assert_array_equal(parsed.images, np.stack(imgs))
    np.testing.assert_allclose(parsed.keypoints, kp, rtol=1e-12)


@settings(max_examples=20, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2**32 - 1), st.sampled_from([" ", "  ", "\t", " \t"])),
                min_size=1, max_size=3))
def test_pixels_roundtrip(rows):
    imgs = [np.random.default_rng(seed).integers(0, 256, N_PIXELS) for seed, _ in rows]
    text = "ImageId,Image\n" + "".join(f"{i + 1},{sep.join(map(str, img))}\n"
                                       for i, (img, (_, sep)) in enumerate(zip(imgs, rows)))
    parsed = _csv.parse_bytes(text.encode(), "t.csv")
    np.testing.assert_array_equal(parsed.images, np.stack(imgs))


def test_many_rows_cross_chunks(tmp_path, monkeypatch):
    n = 3 * _csv._ROWS_PER_CHUNK + 5
    imgs = np.random.default_rng(1).integers(0, 256, (n, N_PIXELS))
    path = write_test(tmp_path / "test.csv", range(1, n + 1), imgs)
    with monkeypatch.context() as patch:     # regular rows never need the per-row parser
        patch.setattr(_csv, "_parse_row", lambda *a: pytest.fail("slow path used"))
        parsed = read_csv(path, test=True)
    np.testing.assert_array_equal(parsed.images, imgs)
    bad = n - 7
    set_line(path, bad + 1, f"{bad}," + image_text(imgs[bad - 1]).replace(" ", " x ", 1))
    with pytest.raises(DataFormatError, match=rf"data row {bad} \(file line {bad + 1}\), "
                                              r"column 'Image': pixel 2 is 'x'"):
        read_csv(path, test=True)


# --------------------------------------------------------------------------------------------
# Cache


def test_cache_hit_returns_identical_arrays_without_parsing(tmp_path, cache, monkeypatch):
    path = write_training(tmp_path / "t.csv", keypoints(4))
    first = read_csv(path)
    assert len(list(cache.glob("*.npz"))) == 1

    def boom(*a, **k):
        raise AssertionError("parsed again")
    monkeypatch.setattr(_csv_cache, "parse_bytes", boom)
    second = read_csv(path)
    np.testing.assert_array_equal(second.images, first.images)
    np.testing.assert_array_equal(second.keypoints, first.keypoints)
    assert second.columns == first.columns
    np.testing.assert_array_equal(load(path)[0], load(path, cache=True)[0])


def test_modified_file_is_parsed_again_even_with_the_same_size(tmp_path):
    kp, imgs = np.full((3, K), 50.25), [image(i) for i in range(3)]
    path = write_training(tmp_path / "t.csv", kp, imgs)
    size = path.stat().st_size
    assert read_csv(path).images[1, 5] == imgs[1][5]
    imgs[1] = imgs[1].copy()
    imgs[1][5] = (imgs[1][5] + 1) % 10 + (imgs[1][5] // 10) * 10   # same number of digits
    kp[2, 3] = 51.25
    write_training(path, kp, imgs)
    assert path.stat().st_size == size
    parsed = read_csv(path)
    assert parsed.images[1, 5] == imgs[1][5]
    assert parsed.keypoints[2, 3] == kp[2, 3]


def test_stat_shortcut_skips_reading_an_old_unchanged_file(tmp_path, cache, monkeypatch):
    path = write_training(tmp_path / "t.csv", keypoints(2))
    monkeypatch.setattr(_csv_cache, "_STAT_TRUST_NS", -1)     # as if the file were old
    first = read_csv(path)
    assert len(list(cache.glob("*.json"))) == 1
    real_map = _csv_cache.map_file
    monkeypatch.setattr(_csv_cache, "map_file",
                        lambda p: (_ for _ in ()).throw(AssertionError("read")))
    np.testing.assert_array_equal(read_csv(path).images, first.images)
    monkeypatch.setattr(_csv_cache, "map_file", real_map)
    write_training(path, keypoints(3))                   # a different stamp: read again
    assert len(read_csv(path)) == 3


def test_fresh_file_stamp_is_not_trusted(tmp_path, cache):
    read_csv(write_training(tmp_path / "t.csv", keypoints(2)))
    assert list(cache.glob("*.json")) == []             # racy: only the content key is used


def test_corrupt_cache_entry_is_ignored_and_rewritten(tmp_path, cache):
    path = write_training(tmp_path / "t.csv", keypoints(2))
    first = read_csv(path)
    (entry,) = cache.glob("*.npz")
    entry.write_bytes(b"garbage")
    np.testing.assert_array_equal(read_csv(path).images, first.images)
    np.testing.assert_array_equal(np.load(entry, allow_pickle=False)["images"], first.images)


def test_cache_false_writes_nothing(tmp_path, cache):
    read_csv(write_training(tmp_path / "t.csv", keypoints(2)), cache=False)
    assert not cache.exists()


def test_unwritable_cache_warns_and_still_loads(tmp_path, monkeypatch):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(blocker))
    with pytest.warns(RuntimeWarning, match="could not write cache"):
        assert len(read_csv(write_training(tmp_path / "t.csv", keypoints(2)))) == 2


def test_cache_dir_resolution(monkeypatch, tmp_path):
    monkeypatch.delenv("FACEKEYPOINTS_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert data.cache_dir() == tmp_path / "xdg" / "facekeypoints"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert data.cache_dir() == tmp_path / "home" / ".cache" / "facekeypoints"


# --------------------------------------------------------------------------------------------
# Bad input: DataFormatError (a ValueError) naming row, column, expected and found


@pytest.fixture
def good(tmp_path):
    return write_training(tmp_path / "t.csv", keypoints(3))


def bad_pixels(good, pixel, value):
    """Line 3 (data row 2) of `good` with pixel `pixel` (1-based) replaced by text `value`."""
    line = good.read_text().split("\n")[2]
    head, img = line.rsplit(",", 1)
    tokens = img.split(" ")
    tokens[pixel - 1] = value
    set_line(good, 3, head + "," + " ".join(t for t in tokens if t != ""))
    return good


@pytest.mark.parametrize("value,pattern", [
    ("abc", r"data row 2 \(file line 3\), column 'Image': pixel 7 is 'abc', not a whole number"),
    ("256", r"data row 2 \(file line 3\), column 'Image': pixel 7 is 256, outside 0\.\.255"),
    ("-1", r"data row 2 \(file line 3\), column 'Image': pixel 7 is -1, outside 0\.\.255"),
    ("1000", r"data row 2 \(file line 3\), column 'Image': pixel 7 is 1000, outside 0\.\.255"),
    ("2.5", r"data row 2 \(file line 3\), column 'Image': pixel 7 is '2\.5'"),
    ("", r"data row 2 \(file line 3\), column 'Image': expected 9216 pixels \(96x96\), "
         r"found 9215"),
    ("1 2", r"data row 2 \(file line 3\), column 'Image': expected 9216 .* found 9217"),
])
def test_bad_pixels(good, value, pattern):
    with pytest.raises(DataFormatError, match=pattern) as err:
        read_csv(bad_pixels(good, 7, value))
    assert isinstance(err.value, ValueError)


def test_empty_image_field(good):
    line = good.read_text().split("\n")[1]
    set_line(good, 2, line.rsplit(",", 1)[0] + ",")
    with pytest.raises(DataFormatError, match=r"data row 1 \(file line 2\).*found 0 "
                                              r"\(the field is empty\)"):
        read_csv(good)


def test_bad_keypoint(good):
    line = good.read_text().split("\n")[3].split(",")
    line[20] = "left"
    set_line(good, 4, ",".join(line))
    with pytest.raises(DataFormatError, match=r"data row 3 \(file line 4\), column 'nose_tip_x':"
                                              r" 'left' is not a number"):
        read_csv(good)


def test_missing_image_column(tmp_path):
    path = tmp_path / "t.csv"
    path.write_text("left_eye_center_x,Imag\n1,2\n")
    with pytest.raises(DataFormatError, match=r"no 'Image' column.*did you mean 'Imag'"):
        read_csv(path)


def test_wrong_field_count(good):
    line = good.read_text().split("\n")[2]
    set_line(good, 3, line.split(",", 1)[1])
    with pytest.raises(DataFormatError, match=r"data row 2 \(file line 3\): expected 31 "
                                              r"comma-separated fields .* found 30"):
        read_csv(good)


@pytest.mark.parametrize("content,pattern", [
    (b"", "is empty"), (b"\n \n", "is empty"),
    (b",".join(c.encode() for c in KEYPOINT_COLUMNS) + b",Image\n", "header but no data rows")])
def test_empty_files(tmp_path, content, pattern):
    path = tmp_path / "t.csv"
    path.write_bytes(content)
    with pytest.raises(DataFormatError, match=pattern):
        read_csv(path)


def test_not_utf8(good):
    raw = good.read_bytes().split(b"\n")
    raw[2] = raw[2].replace(b",", b",\xe9", 1)
    good.write_bytes(b"\n".join(raw))
    with pytest.raises(DataFormatError, match=r"data row 2 \(file line 3\): not UTF-8"):
        read_csv(good)


def test_zip_archive_instead_of_csv(tmp_path):
    path = tmp_path / "training.zip"
    path.write_bytes(b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x9c\xa1\xff\xfe\n\x01\x02")
    with pytest.raises(DataFormatError, match=r"file line 1 \(the header\): not UTF-8.*zip"):
        read_csv(path)


def test_duplicated_header_column(tmp_path):
    cols = list(KEYPOINT_COLUMNS)
    cols[5] = "nose_tip_x"
    path = write_training(tmp_path / "t.csv", keypoints(1), columns=cols)
    with pytest.raises(DataFormatError, match=r"'nose_tip_x' appears twice .*columns 6 and 21"):
        read_csv(path)


def test_test_file_without_imageid(good):
    with pytest.raises(DataFormatError, match=r"needs an 'ImageId' column.*without test=True"):
        read_csv(good, test=True)


def test_test_file_read_as_training(tmp_path):
    with pytest.raises(DataFormatError, match="no keypoint columns.*pass test=True"):
        load(write_test(tmp_path / "test.csv", [1]))


def test_bad_image_id(tmp_path):
    path = write_test(tmp_path / "test.csv", [1, 2])
    set_line(path, 3, "2.5," + image_text(image(1)))
    with pytest.raises(DataFormatError, match=r"data row 2 \(file line 3\), column 'ImageId': "
                                              r"expected a whole number, found '2\.5'"):
        read_csv(path, test=True)


def test_cols_unknown_name_suggests(good):
    with pytest.raises(DataFormatError, match=r"'left_eye_centre_x' is not a Kaggle keypoint "
                                              r"column \(did you mean 'left_eye_center_x'\?\)"):
        load(good, cols=["left_eye_centre_x"])


def test_cols_name_missing_from_file(tmp_path):
    path = write_training(tmp_path / "t.csv", keypoints(2)[:, :2], columns=KEYPOINT_COLUMNS[:2])
    with pytest.raises(DataFormatError, match=r"'nose_tip_x' named in cols is not in the file"):
        load(path, cols=["left_eye_center_x", "nose_tip_x"])


def test_no_rows_left(tmp_path):
    kp = keypoints(3)
    kp[0, 4] = kp[1, 6] = kp[2, 6] = np.nan
    with pytest.raises(DataFormatError, match=r"no rows left.*all 3 rows.*"
                                              r"left_eye_inner_corner_x \(1 missing\), "
                                              r"left_eye_outer_corner_x \(2 missing\).*cols="):
        load(write_training(tmp_path / "t.csv", kp))


def test_errors_are_not_cached(good, cache):
    bad_pixels(good, 7, "abc")
    for _ in range(2):
        with pytest.raises(DataFormatError):
            read_csv(good)
    assert not list(cache.glob("*.npz"))


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match="README"):
        read_csv(tmp_path / "nope.csv")


def test_a_directory_is_not_a_missing_file(tmp_path):
    write_training(tmp_path / "training.csv", keypoints(2))
    with pytest.raises(IsADirectoryError, match=r"is a directory, not a CSV file \(it holds "
                                                r"training.csv\); pass the file itself"):
        load(tmp_path)


@pytest.mark.skipif(not os.path.exists("/dev/null"), reason="needs /dev/null")
def test_a_device_is_not_a_missing_file():
    with pytest.raises(DataFormatError, match="/dev/null is a character device, not a CSV file"):
        load("/dev/null")


# --------------------------------------------------------------------------------------------
# write_submission


def lookup_table(path, rows):
    pd.DataFrame(rows, columns=["RowId", "ImageId", "FeatureName"]).assign(Location=np.nan) \
        .to_csv(path, index=False)
    return path


def test_submission_format(tmp_path):
    pred = np.zeros((2, K))
    pred[0, 0], pred[0, 1], pred[1, 20], pred[1, 21] = 0.5, -1.5, 1.25, -0.25
    lookup = lookup_table(tmp_path / "IdLookupTable.csv", [
        (3, 2, "nose_tip_x"), (1, 1, "left_eye_center_x"), (2, 1, "left_eye_center_y"),
        (4, 2, "nose_tip_y"), (5, 2, "left_eye_center_x")])
    out = write_submission(pred, lookup, tmp_path / "sub.csv")
    assert out == tmp_path / "sub.csv"
    lines = out.read_text().splitlines()
    assert lines[0] == "RowId,Location"
    got = pd.read_csv(out)
    assert list(got["RowId"]) == [3, 1, 2, 4, 5]              # lookup row order
    np.testing.assert_allclose(got["Location"], [96.0, 72.0, 0.0, 36.0, 48.0])   # clipped
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_submission_image_ids_and_dataframe(tmp_path):
    lookup = lookup_table(tmp_path / "l.csv", [(1, 10, "nose_tip_y"), (2, 7, "nose_tip_y")])
    pred = np.zeros((2, K))
    pred[:, 21] = [0.5, -0.5]
    out = write_submission(pred, lookup, tmp_path / "a.csv", image_ids=[7, 10])
    np.testing.assert_allclose(pd.read_csv(out)["Location"], [24.0, 72.0])
    frame = pd.DataFrame({"nose_tip_y": [-0.5, 0.5]}, index=[10, 7])
    out = write_submission(frame, lookup, tmp_path / "b.csv")
    np.testing.assert_allclose(pd.read_csv(out)["Location"], [24.0, 72.0])


def test_submission_errors(tmp_path):
    good = lookup_table(tmp_path / "l.csv", [(1, 1, "nose_tip_x")])
    with pytest.raises(ValueError, match=r"shape \(1, 29\); expected \(n_test, 30\)"):
        write_submission(np.zeros((1, 29)), good, tmp_path / "s.csv")
    unknown = lookup_table(tmp_path / "u.csv", [(1, 1, "nose_tip_x"), (2, 1, "nose_top_x")])
    with pytest.raises(DataFormatError, match=r"data row 2 .*'nose_top_x' is not a Kaggle "
                                              r"keypoint column \(did you mean 'nose_tip_x'"):
        write_submission(np.zeros((1, K)), unknown, tmp_path / "s.csv")
    missing = lookup_table(tmp_path / "m.csv", [(1, 1, "nose_tip_x"), (2, 3, "nose_tip_x")])
    with pytest.raises(ValueError, match=r"ImageId 3, which has no prediction"):
        write_submission(np.zeros((2, K)), missing, tmp_path / "s.csv")
    (tmp_path / "x.csv").write_text("RowId,FeatureName\n1,nose_tip_x\n")
    with pytest.raises(DataFormatError, match=r"missing column\(s\) \['ImageId'\]"):
        write_submission(np.zeros((1, K)), tmp_path / "x.csv", tmp_path / "s.csv")
    with pytest.raises(ValueError, match="finite"):
        write_submission(np.full((1, K), np.nan), good, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_submission_lookup_that_is_not_csv_text_names_the_file(tmp_path):
    binary = tmp_path / "lookup.bin"
    binary.write_bytes(bytes([0x50, 0x4B, 0x03, 0x04, 0x9E, 0xFF, 0x00, 0x80]) * 50)
    with pytest.raises(DataFormatError, match=r"lookup table .*lookup.bin: not a readable CSV "
                                              r"file \(not UTF-8 text"):
        write_submission(np.zeros((1, K)), binary, tmp_path / "s.csv")
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(DataFormatError, match="empty.csv: not a readable CSV file .*empty"):
        write_submission(np.zeros((1, K)), empty, tmp_path / "s.csv")
    with pytest.raises(IsADirectoryError, match="is a directory"):
        write_submission(np.zeros((1, K)), tmp_path, tmp_path / "s.csv")
    assert not (tmp_path / "s.csv").exists()


def test_submission_on_sample_lookup(tmp_path):
    """The repository's sample IdLookupTable.csv, when present, is accepted as is."""
    root = os.path.join(os.path.dirname(__file__), "..", "data", "sample")
    lookup = os.path.join(root, "IdLookupTable.csv")
    if not os.path.exists(lookup):
        pytest.skip("no data/sample")
    n = int(pd.read_csv(lookup)["ImageId"].max())
    out = write_submission(np.zeros((n, K)), lookup, tmp_path / "s.csv")
    assert len(pd.read_csv(out)) == len(pd.read_csv(lookup))

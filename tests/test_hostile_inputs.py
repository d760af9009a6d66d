"""Hostile CSV input: a corpus of malformed files (tests/hostile_csv/) and property-based fuzzing.

Every malformed file must give a ``DataFormatError`` (a ValueError) whose one-line message
names the file, where the problem is and what was expected: never another kind of exception
(IndexError, UnicodeDecodeError, csv.Error, MemoryError, ...), never a parsed-cache entry, and
through the CLI never a model.
"""
from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from facekeypoints import _csv, data
from facekeypoints.data import (KEYPOINT_COLUMNS, N_PIXELS, DataFormatError, load, load2d,
                                read_csv)

CORPUS = Path(__file__).parent / "hostile_csv"
K = len(KEYPOINT_COLUMNS)
HEADER = ",".join(KEYPOINT_COLUMNS) + ",Image"
MAX_MESSAGE = 600         # an error is one readable line, whatever the size of the input


# file -> (kind, what its error message must say). kind "train": a training file, read with
# test=False; "test": a test file (ImageId,Image), read with test=True. The other reading
# must fail too. Patterns are regular expressions searched in the message.
EXPECTED = {
    "empty.csv": ("train", [r"^empty\.csv is empty", r"expected a Kaggle CSV: a header line"]),
    "blank_lines_only.csv": ("train", [r"^blank_lines_only\.csv is empty"]),
    "header_only.csv": ("train", [r"^header_only\.csv has a header but no data rows"]),
    "missing_header.csv": ("train", [r"^missing_header\.csv: file line 1 looks like data, "
                                     r"not a header", r"no header line", r"training\.csv"]),
    "test_missing_header.csv": ("test", [r"^test_missing_header\.csv: file line 1 looks like "
                                         r"data, not a header", r"ImageId,Image"]),
    "duplicated_column.csv": ("train", [r"column 'nose_tip_x' appears twice in the header "
                                        r"\(columns 2 and 21\)", "rename or drop one"]),
    "wrong_column_count.csv": ("train", [r"data row 2 \(file line 3\): expected 31 "
                                         r"comma-separated fields as in the header, found 30"]),
    "extra_column.csv": ("train", [r"data row 1 \(file line 2\): expected 31 comma-separated "
                                   r"fields .*found 32"]),
    "truncated_line.csv": ("train", [r"data row 2 \(file line 3\), column 'Image': expected "
                                     r"9216 pixels \(96x96\), found 4\d\d\d", r"cut short"]),
    "truncated_in_keypoints.csv": ("train", [r"data row 1 \(file line 2\): expected 31 "
                                             r"comma-separated fields .*found 19",
                                             r"cut short"]),
    "unbalanced_quote.csv": ("train", [r"data row 1 \(file line 2\): malformed CSV \(a quote "
                                     r"'\"' that is not closed on this line\)"]),
    "cr_in_header.csv": ("train", [r"file line 1 \(the header\): malformed CSV",
                                   r"carriage return"]),
    "text_in_keypoint.csv": ("train", [r"data row 2 \(file line 3\), column 'nose_tip_x': "
                                       r"'left' is not a number; expected a finite number"]),
    "inf_keypoint.csv": ("train", [r"data row 1 \(file line 2\), column 'mouth_left_corner_y'"
                                   r": 'inf' is not a number"]),
    "keypoint_out_of_range.csv": ("train", [r"data row 1 \(file line 2\), column "
                                            r"'right_eye_center_x': '1e300' is far outside "
                                            r"the 96x96 image", r"expected pixel coordinates"]),
    "underscore_in_keypoint.csv": ("train", [r"data row 1 \(file line 2\), column "
                                             r"'nose_tip_y': '5_0\.5' is not a number"]),
    "no_complete_rows.csv": ("train", [r"no rows left after dropping rows with missing "
                                       r"keypoints: all 1 rows", r"left_eye_center_y "
                                       r"\(1 missing\), nose_tip_x \(1 missing\)", r"cols="]),
    "wrong_pixel_count.csv": ("train", [r"data row 1 \(file line 2\), column 'Image': expected "
                                        r"9216 pixels \(96x96\), found 9215"]),
    "too_many_pixels.csv": ("train", [r"column 'Image': expected 9216 pixels \(96x96\), "
                                      r"found 9217"]),
    "pixel_256.csv": ("train", [r"data row 2 \(file line 3\), column 'Image': pixel 100 is "
                                r"256, outside 0\.\.255"]),
    "pixel_minus_1.csv": ("train", [r"data row 1 \(file line 2\), column 'Image': pixel 5 is "
                                    r"-1, outside 0\.\.255"]),
    "text_in_pixel.csv": ("train", [r"column 'Image': pixel 9000 is 'abc', not a whole number; "
                                    r"expected 9216 space-separated integers 0\.\.255"]),
    "pixel_fraction.csv": ("train", [r"column 'Image': pixel 2 is '2\.5', not a whole number"]),
    "comma_separated_pixels.csv": ("train", [r"column 'Image': pixel 1 is '1;0;3;6;9;2;5;8;1;",
                                             r"space-separated"]),
    "non_utf8.csv": ("train", [r"data row 1 \(file line 2\): not UTF-8 text \(byte 0xe9\)",
                               r"Latin-1", r"Re-save it as UTF-8"]),
    "utf16.csv": ("train", [r"file line 1 \(the header\): not UTF-8 text \(byte 0xff\)",
                            r"UTF-16"]),
    "zip_archive.csv": ("train", [r"file line 1 \(the header\): not UTF-8 text",
                                  r"This is a zip archive: unzip it"]),
    # compressed files (recognised by their bytes, whatever their names)
    "zip_two_csvs.csv": ("train", [r"^zip_two_csvs\.csv: a zip archive with 2 \.csv files; "
                                   r"expected exactly one \(it holds 'training\.csv', "
                                   r"'test\.csv'\)"]),
    "zip_no_csv.csv": ("train", [r"a zip archive with no \.csv file in it \(it holds "
                                 r"'notes\.txt'\)"]),
    "zip_bad_member.csv": ("train", [r"^zip_bad_member\.csv:training\.csv, data row 1 \(file "
                                     r"line 2\): expected 31 comma-separated fields"]),
    "zip_bomb.csv": ("train", [r"^zip_bomb\.csv:training\.csv unpacks to 4\.0 GB, over the "
                               r"2\.0 GB", r"not unpacked"]),
    "zip_encrypted.csv": ("train", [r"^zip_encrypted\.csv:training\.csv: the zip archive is "
                                    r"encrypted"]),
    "gzip_cut.csv": ("train", [r"^gzip_cut\.csv: a gzip file that cannot be unpacked",
                               r"cut short"]),
    "gzip_header_only.csv": ("train", [r"^gzip_header_only\.csv has a header but no data "
                                       r"rows\.$"]),
    "test_bad_image_id.csv": ("test", [r"data row 2 \(file line 3\), column 'ImageId': expected "
                                       r"a whole number, found 'x7'\.$"]),
    "test_fraction_image_id.csv": ("test", [r"data row 1 \(file line 2\), column 'ImageId': "
                                            r"expected a whole number, found '2\.5'"]),
    "test_huge_image_id.csv": ("test", [r"data row 1 \(file line 2\), column 'ImageId': "
                                        r"expected a whole number, found '1e30', which is "
                                        r"too large"]),
    "test_missing_image_id_field.csv": ("test", [r"data row 2 \(file line 3\): expected 2 "
                                                 r"comma-separated fields as in the header, "
                                                 r"found 1\.$"]),
    "test_wrong_pixel_count.csv": ("test", [r"column 'Image': expected 9216 pixels \(96x96\), "
                                            r"found 96"]),
}
# Files that parse (every row kept) and fail only in load(), where rows with gaps are dropped.
PARSES = {"no_complete_rows.csv"}


def check_message(err, name):
    """One line, bounded size, starts with the file name; a DataFormatError, nothing else."""
    assert type(err) is DataFormatError and isinstance(err, ValueError)
    msg = str(err)
    assert msg.startswith(name), msg[:200]
    assert "\n" not in msg and "Traceback" not in msg
    assert len(msg) <= MAX_MESSAGE, f"{len(msg)} characters: {msg[:300]}..."
    return msg


def assert_says(msg, patterns):
    for pattern in patterns:
        assert re.search(pattern, msg), f"{pattern!r} not in: {msg}"


def cache_entries():
    folder = data.cache_dir() / "parsed"
    return sorted(p.name for p in folder.glob("*.npz")) if folder.exists() else []


# --------------------------------------------------------------------------------------------
# The corpus


def test_corpus_is_listed_and_documented():
    files = {p.name for p in CORPUS.glob("*.csv")}
    assert files == set(EXPECTED)
    readme = (CORPUS / "README.md").read_text()
    for name in files:
        assert f"`{name}`" in readme, f"{name} is not in hostile_csv/README.md"
    assert sum(p.stat().st_size for p in CORPUS.glob("*.csv")) < 700_000


def test_corpus_is_what_make_corpus_writes(tmp_path):
    spec = importlib.util.spec_from_file_location("make_corpus", CORPUS / "make_corpus.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.main(tmp_path)
    for name in EXPECTED:
        assert (tmp_path / name).read_bytes() == (CORPUS / name).read_bytes(), name


@pytest.mark.parametrize("cache", [False, True], ids=["nocache", "cache"])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_read_csv_rejects(name, cache):
    kind, patterns = EXPECTED[name]
    path = CORPUS / name
    for test in (kind == "test", kind != "test"):
        if name in PARSES and not test:
            assert len(read_csv(path, cache=cache)) >= 1
            continue
        with pytest.raises(DataFormatError) as err:
            read_csv(path, test=test, cache=cache)
        msg = check_message(err.value, name)
        if test == (kind == "test") and name not in PARSES:
            assert_says(msg, patterns)
    if name not in PARSES:     # a file that does not parse leaves nothing in the cache
        assert cache_entries() == []


@pytest.mark.parametrize("loader", [load, load2d])
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_load_rejects(name, loader):
    kind, patterns = EXPECTED[name]
    for test in (kind == "test", kind != "test"):
        for cache in (True, False):
            with pytest.raises(DataFormatError) as err:
                loader(CORPUS / name, test=test, cache=cache)
            msg = check_message(err.value, name)
            if test == (kind == "test"):
                assert_says(msg, patterns)
    if name not in PARSES:
        assert cache_entries() == []


def test_missing_header_error_does_not_echo_pixels():
    with pytest.raises(DataFormatError) as err:
        read_csv(CORPUS / "test_missing_header.csv", test=True)
    assert "9 2 5 8 1 4 7 0 3 6 9 2 5 8" not in str(err.value)


# --------------------------------------------------------------------------------------------
# 10 MB lines (written at test time, never committed)

BIG = 10_000_000


def big_case(path, case):
    good = valid_row(1)
    head, _, image = good.rpartition(",")
    if case == "5M pixels":
        body = HEADER + "\n" + head + "," + "1 " * (BIG // 2) + "\n"
    elif case == "one 10 MB pixel":
        body = HEADER + "\n" + head + "," + "7" * BIG + "\n"
    elif case == "10 MB keypoint":
        fields = head.split(",")
        fields[20] = "9" * BIG
        body = HEADER + "\n" + ",".join(fields) + "," + image + "\n"
    elif case == "10 MB header":
        body = "x" * BIG + ",Imag\n" + good + "\n"
    elif case == "10M commas":
        body = HEADER + "\n" + "," * BIG + image + "\n"
    elif case == "10 MB test id":
        body = "ImageId,Image\n" + "1" * BIG + "," + image + "\n"
    path.write_text(body)
    assert path.stat().st_size >= BIG
    return path


@pytest.mark.parametrize("case,patterns", [
    ("5M pixels", [r"data row 1 \(file line 2\), column 'Image': expected 9216 pixels "
                   r"\(96x96\), found 5000000"]),
    ("one 10 MB pixel", [r"column 'Image': pixel 1 is '7777777777.*' \(10000000 characters\), "
                         r"not a whole number"]),
    ("10 MB keypoint", [r"column 'nose_tip_x': '9999999999.*' \(10000000 characters\) is "
                        r"not a number"]),
    ("10 MB header", [r"no 'Image' column in the header; found \['xxxxxxxx.*' \(10000000 "
                      r"characters\)", r"did you mean 'Imag'"]),
    ("10M commas", [r"data row 1 \(file line 2\): expected 31 comma-separated fields .*found "
                    r"10000001"]),
    ("10 MB test id", [r"column 'ImageId': expected a whole number, found '1111111111.*' "
                       r"\(10000000 characters\), which is too large"]),
])
def test_10mb_line(tmp_path, case, patterns):
    path = big_case(tmp_path / "big.csv", case)
    try:
        with pytest.raises(DataFormatError) as err:
            read_csv(path, test=case.endswith("test id"))
    finally:
        path.unlink()                      # pytest keeps old tmp folders: don't keep 10 MB
    assert_says(check_message(err.value, "big.csv"), patterns)
    assert cache_entries() == []


def test_long_pixel_number_is_not_echoed(tmp_path):
    """A 4000-digit pixel is a valid int() (a 10 MB one is not): the message must stay short."""
    head, _, image = valid_row(1).rpartition(",")
    path = tmp_path / "long.csv"
    path.write_text(HEADER + "\n" + head + ",1" + "0" * 3999 + image[image.index(" "):] + "\n")
    with pytest.raises(DataFormatError) as err:
        read_csv(path)
    assert_says(check_message(err.value, "long.csv"),
                [r"column 'Image': pixel 1 is '1000000000.*' \(4000 characters\), outside "
                 r"0\.\.255\.$"])


# --------------------------------------------------------------------------------------------
# Never a model: the CLI refuses bad data with one line and exit status 2

CLI_CASES = ["truncated_line.csv", "cr_in_header.csv", "no_complete_rows.csv"]
_SCRIPT = Path(sys.executable).with_name("facekeypoints")     # the installed console script
COMMAND = ([str(_SCRIPT)] if _SCRIPT.exists() else
           [sys.executable, "-c", "import sys; from facekeypoints.cli import main; "
                                  "sys.exit(main())"])


@pytest.fixture(scope="module")
def cli_runs(tmp_path_factory):
    """`facekeypoints train net1 --data BAD.csv` for a few corpus files, run concurrently."""
    base = tmp_path_factory.mktemp("cli")
    procs = {}
    for name in CLI_CASES:
        out = base / name.replace(".csv", "")
        env = dict(os.environ, FACEKEYPOINTS_CACHE=str(out.with_suffix(".cache")),
                   MPLBACKEND="Agg")
        procs[name] = (out, subprocess.Popen(
            COMMAND + ["train", "net1", "--data", str(CORPUS / name), "--max-epochs", "1",
                       "--out", str(out), "--device", "cpu"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=base))
    results = {}
    for name, (out, proc) in procs.items():
        stdout, stderr = proc.communicate(timeout=120)
        results[name] = (proc.returncode, stdout, stderr, out)
    return results


@pytest.mark.parametrize("name", CLI_CASES)
def test_cli_train_refuses_bad_data(cli_runs, name):
    code, stdout, stderr, out = cli_runs[name]
    assert code == 2, (code, stderr)
    lines = stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in stderr, stderr
    assert lines[0].startswith("facekeypoints train: error: " + name)
    kind, patterns = EXPECTED[name]
    assert_says(lines[0].partition("error: ")[2], patterns)
    assert "epochs on" not in stdout                    # training never started
    assert not (out / "model.pt").exists()
    assert not out.exists() or not list(out.rglob("*.pt"))
    if name not in PARSES:
        assert not list(out.with_suffix(".cache").rglob("*.npz"))


# --------------------------------------------------------------------------------------------
# Fuzzing: helpers


def valid_keypoints(r):
    return [20.0 + (r * 11 + k * 7) % 57 + 0.25 * (k % 4) for k in range(K)]


def valid_image(r):
    return [(r * 31 + k * 7) % 256 for k in range(N_PIXELS)]


def valid_row(r, kp=None, img=None, sep=" ", fmt=str):
    """One Kaggle training row: 30 keypoints (NaN -> empty field) then the Image field."""
    kp = valid_keypoints(r) if kp is None else kp
    img = valid_image(r) if img is None else img
    fields = ["" if np.isnan(v) else repr(float(v)) for v in kp]
    return ",".join(fields + [sep.join(fmt(int(p)) for p in img)])


def valid_csv(n=2):
    return (HEADER + "\n" + "".join(valid_row(r) + "\n" for r in range(n))).encode()


BASE = valid_csv(2)
BASE_ROWS = [(0, len(HEADER))]          # (start, end) of the header and each data line
for _line in BASE.split(b"\n")[1:-1]:
    _start = BASE_ROWS[-1][1] + 1
    BASE_ROWS.append((_start, _start + len(_line)))


def reference_parse(raw):
    """A slow, obvious reading of a Kaggle training file with Image last; None if it cannot
    (or if the file uses a feature this reference does not model: quotes, odd spellings)."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    text = text[1:] if text.startswith("\ufeff") else text
    lines = [ln[:-1] if ln.endswith("\r") else ln for ln in text.split("\n")]
    lines = [ln for ln in lines if ln.strip()]
    if not lines or '"' in text or any(len(ln) > 64 and not ln.strip() for ln in lines):
        return None
    if [c.strip() for c in lines[0].split(",")] != list(KEYPOINT_COLUMNS) + ["Image"]:
        return None
    kps, imgs = [], []
    for ln in lines[1:]:
        head, _, image = ln.rpartition(",")
        fields = head.split(",")
        if len(fields) != K or not ln.isascii() or "_" in ln:
            return None
        try:
            kp = [float(v) if v.strip() else np.nan for v in fields]
            tokens = image.split()
            img = [int(t) for t in tokens]
        except ValueError:
            return None
        if (len(img) != N_PIXELS or not all(0 <= v <= 255 for v in img)
                or not all(np.isnan(v) or -96 <= v <= 192 for v in kp)):
            return None
        kps.append(kp)
        imgs.append(img)
    if not kps:
        return None
    return np.array(imgs, dtype=np.uint8), np.array(kps, dtype=np.float64)


def check_outcome(path, raw):
    """read_csv and load either succeed with sane arrays or raise DataFormatError."""
    try:
        parsed = read_csv(path, cache=False)
    except DataFormatError as err:
        check_message(err, path.name)
        return None
    n = len(parsed)
    assert n >= 1
    assert parsed.images.dtype == np.uint8 and parsed.images.shape == (n, N_PIXELS)
    assert parsed.keypoints.dtype == np.float64 and parsed.keypoints.shape == (n, K)
    assert not np.isinf(parsed.keypoints).any()
    assert parsed.image_ids is None and set(parsed.columns) <= set(KEYPOINT_COLUMNS)
    ref = reference_parse(raw)
    if ref is not None:
        np.testing.assert_array_equal(parsed.images, ref[0])
        np.testing.assert_array_equal(parsed.keypoints, ref[1])
    try:
        X, y = load(path, cache=False)
    except DataFormatError as err:
        check_message(err, path.name)
    else:
        assert X.dtype == np.float32 and X.shape[1] == N_PIXELS and len(X) <= n
        assert X.min() >= 0 and X.max() <= 1
        assert y.dtype == np.float32 and np.isfinite(y).all() and np.abs(y).max() <= 3
    with pytest.raises(DataFormatError):        # never a test file: there is no ImageId
        read_csv(path, test=True, cache=False)
    return parsed


SPECIAL = [b",", b'"', b"\n", b"\r", b"\r\n", b"\x00", b" ", b"\t", b"-", b".", b"e", b"+",
           b"_", b"\xff", b"\xe9", b"\xef\xbb\xbf", b"nan", b"NA", b"inf", b"999", b"256",
           b"1e400", b"-1", b"0x1f", b"\xd9\xa3", b",,", b'""', b"\n\n", b" " * 70]


@st.composite
def offsets(draw, raw):
    """A byte offset, biased to the short structural parts (header, keypoint fields)."""
    where = draw(st.sampled_from(["anywhere", "header", "keypoints", "image start",
                                  "line end"]))
    if where == "anywhere":
        return draw(st.integers(0, len(raw)))
    if where == "header":
        return draw(st.integers(0, BASE_ROWS[0][1]))
    start, end = draw(st.sampled_from(BASE_ROWS[1:]))
    end = min(end, len(raw))
    start = min(start, end)
    if where == "keypoints":
        return draw(st.integers(start, min(start + 400, end)))
    if where == "image start":
        cut = raw.rfind(b",", start, end)
        cut = start if cut < 0 else cut
        return draw(st.integers(cut, min(cut + 20, end)))
    return draw(st.integers(max(start, end - 20), end))


@st.composite
def mutation(draw, raw):
    op = draw(st.sampled_from(["flip", "truncate", "insert", "delete", "drop field",
                               "replace pixel", "replace keypoint", "duplicate line",
                               "drop line"]))
    if op == "flip":
        i = draw(offsets(raw))
        if i >= len(raw):
            return raw
        return raw[:i] + bytes([raw[i] ^ draw(st.integers(1, 255))]) + raw[i + 1:]
    if op == "truncate":
        return raw[:draw(offsets(raw))]
    if op == "insert":
        i = draw(offsets(raw))
        junk = draw(st.one_of(st.sampled_from(SPECIAL), st.binary(min_size=1, max_size=6)))
        return raw[:i] + junk + raw[i:]
    if op == "delete":
        i = draw(offsets(raw))
        return raw[:i] + raw[i + draw(st.integers(1, 30)):]
    lines = raw.split(b"\n")
    r = draw(st.integers(0, len(lines) - 1))
    if op == "duplicate line":
        lines.insert(r, lines[r])
    elif op == "drop line":
        del lines[r]
    elif op == "drop field":
        fields = lines[r].split(b",")
        del fields[draw(st.integers(0, len(fields) - 1))]
        lines[r] = b",".join(fields)
    else:
        head, sep, image = lines[r].rpartition(b",")
        value = draw(st.one_of(st.sampled_from(SPECIAL), st.binary(max_size=5),
                               st.integers(-300, 1000).map(lambda v: str(v).encode()),
                               st.floats().map(lambda v: repr(v).encode())))
        if op == "replace pixel":
            tokens = image.split(b" ")
            tokens[draw(st.integers(0, len(tokens) - 1))] = value
            lines[r] = head + sep + b" ".join(tokens)
        else:
            fields = head.split(b",")
            fields[draw(st.integers(0, len(fields) - 1))] = value
            lines[r] = b",".join(fields) + sep + image
    return b"\n".join(lines)


@pytest.fixture(scope="module")
def fuzz_dir(tmp_path_factory):
    return tmp_path_factory.mktemp("fuzz")


_FUZZ = settings(deadline=None, derandomize=True, database=None,
                 suppress_health_check=[HealthCheck.function_scoped_fixture,
                                        HealthCheck.too_slow, HealthCheck.data_too_large])


def fuzz(examples):
    """Deterministic (derandomized) hypothesis settings with this many examples.

    FACEKEYPOINTS_FUZZ_SCALE=20 runs 20 times as many, with fresh random examples each run:
    for a deeper search by hand, not for CI.
    """
    scale = float(os.environ.get("FACEKEYPOINTS_FUZZ_SCALE", "1"))
    return settings(_FUZZ, max_examples=max(1, int(examples * scale)), derandomize=scale == 1)


# --------------------------------------------------------------------------------------------
# Fuzzing: mutated files give sane arrays or a DataFormatError, nothing else


@fuzz(250)
@given(data_=st.data())
def test_fuzz_mutated_csv(fuzz_dir, data_):
    raw = BASE
    for _ in range(data_.draw(st.integers(1, 3))):
        raw = data_.draw(mutation(raw))
    path = fuzz_dir / "mutant.csv"
    path.write_bytes(raw)
    check_outcome(path, raw)


@fuzz(60)
@given(data_=st.data())
def test_fuzz_mutated_test_file(fuzz_dir, data_):
    raw = ("ImageId,Image\n" + "".join(f"{i + 1}," + " ".join(map(str, valid_image(i))) + "\n"
                                       for i in range(2))).encode()
    raw = data_.draw(mutation(raw))
    path = fuzz_dir / "mutant_test.csv"
    path.write_bytes(raw)
    try:
        parsed = read_csv(path, test=True, cache=False)
    except DataFormatError as err:
        check_message(err, path.name)
    else:
        assert parsed.images.dtype == np.uint8 and parsed.images.shape[1] == N_PIXELS
        assert parsed.image_ids.dtype == np.int64 and parsed.keypoints is None
        assert len(parsed.image_ids) == len(parsed.images) >= 1
    with pytest.raises(DataFormatError):
        load(path, cache=False)


# Fast path against the careful per-row parser: whenever the vectorised parser accepts a chunk
# of Image fields, the careful parser must accept every row and agree pixel for pixel.

TOKEN = st.text(alphabet="0123456789 \t.-+e", max_size=5)


@fuzz(150)
@given(rows=st.lists(st.tuples(st.integers(0, 2**32 - 1),
                          st.lists(st.tuples(st.integers(0, N_PIXELS - 1), TOKEN), max_size=3),
                          st.sampled_from([" ", "  ", "\t"]), st.booleans()),
                min_size=1, max_size=3))
def test_fuzz_fast_path_agrees_with_careful_parser(rows):
    fields, expected = [], []
    for seed, edits, sep, padded in rows:
        tokens = [f"{v:03d}" if padded else str(v)
                  for v in np.random.default_rng(seed).integers(0, 256, N_PIXELS)]
        for k, text in edits:
            tokens[k] = text
        field = sep.join(tokens).encode()
        fields.append(field)
        try:
            expected.append(_csv._parse_row(field, "row"))
        except DataFormatError:
            expected.append(None)
    out = np.empty((len(fields), N_PIXELS), np.uint8)
    widths = np.array([len(f) + 1 for f in fields])
    if _csv._parse_chunk(fields, widths, out, _csv._Scratch()):
        assert all(e is not None for e in expected)
        np.testing.assert_array_equal(out, np.stack(expected))
    if all(e is not None for e in expected):       # and the whole reader gives the same
        text = b"ImageId,Image\n" + b"".join(b"%d," % (i + 1) + f + b"\n"
                                             for i, f in enumerate(fields))
        parsed = _csv.parse_bytes(text, "t.csv")
        np.testing.assert_array_equal(parsed.images, np.stack(expected))


# --------------------------------------------------------------------------------------------
# Fuzzing: random valid files round-trip exactly


@fuzz(40)
@given(n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1),
       gap_rate=st.sampled_from([0.0, 0.1, 0.5, 1.0]), sep=st.sampled_from([" ", "  ", "\t"]),
       newline=st.sampled_from(["\n", "\r\n"]), trailing=st.booleans(), bom=st.booleans(),
       padded=st.booleans(), quoted=st.booleans(), digits=st.sampled_from([None, 2, 6]))
def test_fuzz_valid_files_roundtrip(fuzz_dir, n, seed, gap_rate, sep, newline, trailing, bom,
                                    padded, quoted, digits):
    rng = np.random.default_rng(seed)
    kp = rng.uniform(0, 96, (n, K))
    if digits is not None:
        kp = kp.round(digits)
    kp[rng.random((n, K)) < gap_rate] = np.nan
    imgs = rng.integers(0, 256, (n, N_PIXELS))
    imgs[:, :2] = [0, 255]
    fmt = (lambda v: f"{v:03d}") if padded else str
    rows = []
    for i in range(n):
        head, _, image = valid_row(i, kp[i], imgs[i], sep, fmt).rpartition(",")
        rows.append(f'{head},"{image}"' if quoted else f"{head},{image}")
    text = newline.join([HEADER] + rows) + (newline if trailing else "")
    path = fuzz_dir / "valid.csv"
    path.write_bytes((b"\xef\xbb\xbf" if bom else b"") + text.encode())
    parsed = read_csv(path, cache=False)
    np.testing.assert_array_equal(parsed.images, imgs)
    np.testing.assert_array_equal(parsed.keypoints, kp)
    assert parsed.columns == KEYPOINT_COLUMNS
    complete = ~np.isnan(kp).any(axis=1)
    if complete.any():
        X, y = load(path, cache=False)
        assert len(X) == complete.sum() and np.isfinite(y).all()
    else:
        with pytest.raises(DataFormatError, match="no rows left"):
            load(path, cache=False)


@fuzz(15)
@given(ids=st.lists(st.integers(0, 2**40), min_size=1, max_size=4), seed=st.integers(0, 99))
def test_fuzz_valid_test_files_roundtrip(fuzz_dir, ids, seed):
    imgs = np.random.default_rng(seed).integers(0, 256, (len(ids), N_PIXELS))
    path = fuzz_dir / "valid_test.csv"
    path.write_text("ImageId,Image\n" + "".join(f"{i}," + " ".join(map(str, img)) + "\n"
                                                for i, img in zip(ids, imgs)))
    parsed = read_csv(path, test=True, cache=False)
    assert list(parsed.image_ids) == ids
    np.testing.assert_array_equal(parsed.images, imgs)


def test_reference_parse_reads_the_base_file():
    """The fuzz oracle is only as good as the reference: it must read the unmutated base."""
    ref = reference_parse(BASE)
    assert ref is not None
    np.testing.assert_array_equal(ref[0], np.array([valid_image(r) for r in range(2)]))
    parsed = _csv.parse_bytes(BASE, "base.csv")
    np.testing.assert_array_equal(parsed.images, ref[0])
    np.testing.assert_array_equal(parsed.keypoints, ref[1])


# --------------------------------------------------------------------------------------------
# Damaged and forged model files and checkpoints. Each is made at test time from a freshly
# saved tiny net (no binaries committed) and must be refused with ModelFileError (model files)
# or CheckpointError (checkpoints), both ValueErrors (exit 2 in the CLI), with a message that
# names the file, before anything is built from it: never another exception, never a net.


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """A model file and a checkpoint of a tiny net trained for two epochs."""
    import torch

    from facekeypoints.checkpoint import Checkpoint
    from facekeypoints.persist import save_model
    from tests.conftest import tiny_data, tiny_net

    folder = tmp_path_factory.mktemp("saved")
    X, y = tiny_data()
    net = tiny_net(max_epochs=2, callbacks=[("checkpoint", Checkpoint(folder / "ckpt.pt"))])
    torch.manual_seed(0)
    net.fit(X, y)
    save_model(net, folder / "model.pt")
    return folder


def _member_span(raw, suffix):
    """(start, end) of a stored zip member's bytes: the largest whose name ends with suffix
    (the largest weight tensor, for suffix '')."""
    import io
    import zipfile

    with zipfile.ZipFile(io.BytesIO(raw)) as z:
        info = max((i for i in z.infolist() if i.filename.endswith(suffix)),
                   key=lambda i: i.file_size)
    # the local header: 30 bytes, then the name and the extra field, then the data
    name_len = int.from_bytes(raw[info.header_offset + 26:info.header_offset + 28], "little")
    extra_len = int.from_bytes(raw[info.header_offset + 28:info.header_offset + 30], "little")
    start = info.header_offset + 30 + name_len + extra_len
    return start, start + info.file_size


def _bytes(change):
    def mutate(src, dst):
        dst.write_bytes(change(bytearray(src.read_bytes())))
    return mutate


def _zero_middle(raw):                  # the issue's "400 kB zeroed in the middle", scaled
    n = len(raw)
    raw[n // 3:2 * n // 3] = bytes(2 * n // 3 - n // 3)
    return raw


def _zero_largest_tensor(raw):         # only tensor bytes: the archive itself stays readable
    start, end = _member_span(bytes(raw), "")
    raw[start + 16:end - 16] = bytes(end - start - 32)
    return raw


def _flip_one_weight_bit(raw):
    start, end = _member_span(bytes(raw), "")
    raw[(start + end) // 2] ^= 0x01
    return raw


def _random_middle(raw):
    rng = np.random.default_rng(5)
    n = len(raw)
    raw[n // 3:n // 3 + 4096] = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    return raw


def _payload(change, reseal=True):
    """Load, change the payload, save: with a fresh checksum a forged file, else damaged."""
    def mutate(src, dst):
        import torch

        from facekeypoints._safe_io import seal

        payload = torch.load(src, weights_only=True)
        change(payload)
        torch.save(seal(payload) if reseal and "checksum" in payload else payload, dst)
    return mutate


def _config(**changes):
    def change(payload):
        import json

        config = json.loads(payload["config"])
        for key, value in changes.items():
            if key.startswith("kw:"):
                config["layer_kwargs"][key[3:]] = value
            elif value is _DROP:
                config.pop(key, None)
            else:
                config[key] = value
        payload["config"] = json.dumps(config)
    return _payload(change)


_DROP = object()


def _set(key, value, reseal=True):
    def change(payload):
        if value is _DROP:
            payload.pop(key)
        else:
            payload[key] = value
    return _payload(change, reseal=reseal)


def _newer_torch_archive(src, dst):
    import io
    import zipfile

    out = io.BytesIO()
    with zipfile.ZipFile(src) as z, zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as w:
        for info in z.infolist():
            data = z.read(info.filename)
            w.writestr(info, b"99\n" if info.filename.endswith("/version") else data)
    dst.write_bytes(out.getvalue())


def _pickle_bomb(src, dst):
    import pickle

    from tests.conftest import PickleBomb

    with open(dst, "wb") as f:
        pickle.dump({"format": "facekeypoints-model", "state_dict": PickleBomb(dst.with_name(
            "pwned"))}, f)


DAMAGED = r"is damaged: its contents do not match the checksum written with it"
UNREADABLE = r"is not a valid facekeypoints model file: it is damaged or not a torch archive"
# file -> (how it is made from model.pt, what the message must say after the file's path)
MODEL_CORPUS = {
    "zeroed_middle": (_bytes(_zero_middle), f"{DAMAGED}|{UNREADABLE}"),
    "zeroed_weights": (_bytes(_zero_largest_tensor), DAMAGED),
    "one_bit_flipped": (_bytes(_flip_one_weight_bit), DAMAGED),
    "random_bytes_in_middle": (_bytes(_random_middle), f"{DAMAGED}|{UNREADABLE}"),
    "cut_in_half": (_bytes(lambda raw: raw[:len(raw) // 2]), UNREADABLE),
    "empty": (_bytes(lambda raw: b""), UNREADABLE),
    "text_file": (_bytes(lambda raw: b"left_eye_center_x,Image\n1,2 3\n"), UNREADABLE),
    "pickle_that_runs_code": (_pickle_bomb, UNREADABLE),
    "newer_torch_archive": (_newer_torch_archive, r"written by a newer PyTorch \(archive "
                                                  r"version 99; this PyTorch .* reads up to "
                                                  r"\d+\): upgrade PyTorch"),
    "newer_format_version": (_set("version", 99), r"written by a newer facekeypoints "
                                                   r"\(format version 99; this one reads up "
                                                   r"to 2\): upgrade facekeypoints"),
    "version_not_a_number": (_set("version", "2"), r"is damaged \(its format version is '2'\)"),
    "checksum_removed": (_set("checksum", _DROP), r"is damaged: its checksum is missing"),
    "checksum_garbled": (_set("checksum", "md5:0", reseal=False),
                         r"is damaged: its checksum is unreadable"),
    "a_checkpoint": (_set("format", "facekeypoints-checkpoint"),
                     r"its format is 'facekeypoints-checkpoint', not 'facekeypoints-model'"),
    "other_format": (_set("format", "safetensors"), r"not one facekeypoints wrote"),
    "format_not_text": (_set("format", [1]), r"not one facekeypoints wrote"),
    "config_not_json": (_set("config", "{'layers': "), r"has a damaged config"),
    "history_not_records": (_set("history", "[1, 2]"), r"has a damaged history"),
    "weights_not_tensors": (_set("state_dict", {"layers.conv1.0.weight": "x"}),
                            r"weights are not a dict of floating-point tensors"),
    "weights_missing": (_payload(lambda p: p["state_dict"].pop("layers.output.0.bias")),
                        r"the weights do not fit the config \(missing: "
                        r"\['layers.output.0.bias'\]"),
    "weights_reshaped": (_payload(lambda p: p["state_dict"].update(
        {"layers.output.0.weight": p["state_dict"]["layers.output.0.weight"].reshape(16, 30)})),
        r"layers.output.0.weight is \(16, 30\), the config says \(30, 16\)"),
    # config keys and values the library never writes
    "config_sets_criterion": (_config(criterion="torch.nn.L1Loss"),
                              r"'criterion' is torch.nn.L1Loss, which facekeypoints never "
                              r"writes"),
    "config_names_unknown_criterion": (_config(criterion={"name": "os.system", "params": {}}),
                                       r"unknown criterion 'os.system'"),
    "layer_kwargs_set_criterion": (_config(**{"kw:criterion": "x"}),
                                   r"layer keyword 'criterion' that is no parameter"),
    "layer_kwargs_set_callbacks": (_config(**{"kw:callbacks": []}),
                                   r"layer keyword 'callbacks' that is no parameter"),
    "layer_kwargs_set_compile": (_config(**{"kw:compile": True}),
                                 r"layer keyword 'compile' that is no parameter"),
    "layer_kwargs_route_to_criterion": (_config(**{"kw:criterion__reduction": "sum"}),
                                        r"layer keyword 'criterion__reduction'"),
    "unknown_layer_parameter": (_config(**{"kw:hidden_bias": 0}),
                                r"layer keyword 'hidden_bias' that is no parameter"),
    "73_GB_layer": (_config(**{"kw:hidden_num_units": 93_000_000}),
                    r"the weights do not fit the config: layers.hidden.1.weight is \(16, 196\),"
                    r" the config says \(93000000, 196\)"),
    "astronomic_layer": (_config(**{"kw:hidden_num_units": 10**30}),
                         r"hidden_num_units is 10{30}, not a valid value for a DenseLayer"),
    "negative_layer": (_config(**{"kw:hidden_num_units": -16}), r"hidden_num_units is -16"),
    "fractional_layer": (_config(**{"kw:conv1_num_filters": 4.5}), r"conv1_num_filters is 4.5"),
    "filter_too_large": (_config(**{"kw:conv1_filter_size": [99, 99]}),
                         r"does not describe a net that can be built \(a \(99, 99\) window"),
    "nonlinearity_code": (_config(**{"kw:hidden_nonlinearity": "os.system"}),
                          r"hidden_nonlinearity is os.system, not a valid value"),
    "dropout_p_1": (_config(layers=[["input", "InputLayer"], ["conv1", "Conv2DLayer"],
                                    ["pool1", "MaxPool2DLayer"], ["hidden", "DenseLayer"],
                                    ["drop", "DropoutLayer"], ["output", "DenseLayer"]],
                            **{"kw:drop_p": 1.0}), r"drop_p is 1.0, not a valid value"),
    "unknown_layer_type": (_config(layers=[["input", "InputLayer"], ["conv1", "EvilLayer"]]),
                           r"unknown layer type 'EvilLayer'"),
    "layer_named_max": (_config(layers=[["input", "InputLayer"], ["max", "DenseLayer"]]),
                        r"invalid or repeated layer name 'max'"),
    "no_input_layer": (_config(layers=[["hidden", "DenseLayer"], ["output", "DenseLayer"]]),
                       r"first layer is not an InputLayer"),
    "layers_not_pairs": (_config(layers="InputLayer"), r"'layers' is not a list of \[name, "),
    "unknown_update": (_config(update="os.system"), r"unknown update rule 'os.system'"),
    "hyperparameter_not_of_the_rule": (_config(hyperparameters={"update_beta9": 0.5}),
                                       r"hyperparameters do not fit its update rule"),
    "hyperparameter_not_update": (_config(hyperparameters={"criterion": 0.5}),
                                  r"'hyperparameters' is not a JSON object of update_<name>"),
    "hyperparameter_nan": (_config(hyperparameters={"update_learning_rate": float("nan")}),
                           r"'hyperparameters' is not a JSON object"),
    "max_epochs_text": (_config(max_epochs="100"), r"'max_epochs' is 100, which facekeypoints "
                                                   r"never writes"),
    "eval_size_2": (_config(eval_size=2), r"'eval_size' is 2"),
    "unknown_iterator": (_config(batch_iterators={"train": {"kind": "os.system"}}),
                         r"unknown batch iterator 'os.system'"),
    "iterator_extra_key": (_config(batch_iterators={"train": {"kind": "BatchIterator",
                                                              "batch_size": 16, "x": 1}}),
                           r"train batch iterator is not"),
    "iterator_batch_size_0": (_config(batch_iterators={"test": {"kind": "BatchIterator",
                                                                "batch_size": 0}}),
                              r"test batch iterator is not"),
}


def test_model_corpus_covers_the_issue():
    for name in ("zeroed_middle", "random_bytes_in_middle", "config_sets_criterion",
                 "layer_kwargs_set_callbacks", "layer_kwargs_set_compile", "73_GB_layer",
                 "newer_torch_archive"):
        assert name in MODEL_CORPUS


@pytest.mark.parametrize("name", sorted(MODEL_CORPUS))
def test_damaged_or_forged_model_file_is_refused(saved, tmp_path, name):
    import time

    from facekeypoints import load_model
    from facekeypoints.persist import ModelFileError, read_model_file

    make, pattern = MODEL_CORPUS[name]
    bad = tmp_path / f"{name}.pt"
    make(saved / "model.pt", bad)
    for read in (read_model_file, load_model):
        started = time.perf_counter()
        with pytest.raises(ModelFileError) as err:
            read(bad)
        assert type(err.value) is ModelFileError
        msg = str(err.value)
        assert msg.startswith(str(bad)), msg
        assert "\n" not in msg and len(msg) <= MAX_MESSAGE, msg
        assert re.search(pattern, msg), f"{pattern!r} not in: {msg}"
        assert time.perf_counter() - started < 10      # refused, never allocated
    assert not (tmp_path / "pwned").exists()


def test_model_corpus_cases_differ_from_the_good_file(saved, tmp_path):
    """Each recipe really changes the file (a no-op would pass for the wrong reason)."""
    good = (saved / "model.pt").read_bytes()
    for name, (make, _) in MODEL_CORPUS.items():
        make(saved / "model.pt", tmp_path / "x.pt")
        assert (tmp_path / "x.pt").read_bytes() != good, name


@fuzz(40)
@given(data_=st.data())
def test_fuzz_damaged_model_file(saved, fuzz_dir, data_):
    """Any bytes overwritten anywhere: a ModelFileError naming the file, nothing else."""
    from facekeypoints import load_model
    from facekeypoints.persist import ModelFileError

    raw = bytearray((saved / "model.pt").read_bytes())
    for _ in range(data_.draw(st.integers(1, 3))):
        i = data_.draw(st.integers(0, len(raw) - 1))
        junk = data_.draw(st.binary(min_size=1, max_size=64))
        if junk == bytes(raw[i:i + len(junk)]):
            junk = bytes(b ^ 0xFF for b in junk)
        raw[i:i + len(junk)] = junk
    bad = fuzz_dir / "damaged.pt"
    bad.write_bytes(bytes(raw))
    try:
        net = load_model(bad)
    except ModelFileError as err:
        assert str(err).startswith(str(bad)) and "\n" not in str(err)
        return
    import torch

    # Some bytes of a zip archive carry no content (alignment padding, the archive's random
    # serialization id): damage there is harmless, and the file must then load as the original.
    good = load_model(saved / "model.pt")
    assert net.get_params(deep=False).keys() == good.get_params(deep=False).keys()
    for (k, a), (_, b) in zip(net.module_.state_dict().items(), good.module_.state_dict().items()):
        assert torch.equal(a, b), k
    assert net.saved_history_ == good.saved_history_


CHECKPOINT_CORPUS = {
    "zeroed_middle": (_bytes(_zero_middle), r"is damaged|not a valid facekeypoints checkpoint:"
                                            r" it is damaged"),
    "zeroed_weights": (_bytes(_zero_largest_tensor), r"is damaged: its contents do not match"),
    "random_bytes_in_middle": (_bytes(_random_middle), r"is damaged"),
    "cut_in_half": (_bytes(lambda raw: raw[:len(raw) // 2]), r"not a valid facekeypoints "
                                                             r"checkpoint: it is damaged"),
    "checksum_removed": (_set("checksum", _DROP), r"is damaged: its checksum is missing"),
    "newer_format_version": (_set("version", 99), r"written by a newer facekeypoints"),
    "hyperparameter_sets_criterion": (_set("hyperparameters", '{"criterion": 1.0}'),
                                      r"hyperparameters are not update_<name>: number"),
    "epoch_negative": (_set("epoch", -1), r"its epoch count is -1"),
    "weights_not_tensors": (_set("module", {"x": 1}), r"weights are not a dict of tensors"),
    "history_not_json": (_set("history", "[{"), r"hyperparameters or history are not JSON"),
    "rng_wrong_size": (_payload(lambda p: p["rng"].update(torch=p["rng"]["torch"][:10])),
                       r"random generator states are not generator states"),
    "optimizer_for_another_rule": (_payload(lambda p: p["optimizer"]["param_groups"].append(
        dict(p["optimizer"]["param_groups"][0]))), r"optimizer state does not fit"),
    "weights_of_another_net": (_payload(lambda p: p["module"].pop("layers.output.0.bias")),
                               r"belongs to a different architecture"),
}


@pytest.mark.parametrize("name", sorted(CHECKPOINT_CORPUS))
def test_damaged_or_forged_checkpoint_is_refused(saved, tmp_path, name):
    import torch

    from facekeypoints.checkpoint import CheckpointError
    from tests.conftest import tiny_data, tiny_net

    make, pattern = CHECKPOINT_CORPUS[name]
    bad = tmp_path / "checkpoint.pt"
    make(saved / "ckpt.pt", bad)
    net = tiny_net(max_epochs=4)
    with pytest.raises(CheckpointError) as err:
        net.fit(*tiny_data(), resume=bad)
    msg = str(err.value)
    assert str(bad) in msg and "\n" not in msg, msg
    assert re.search(pattern, msg), f"{pattern!r} not in: {msg}"
    assert not getattr(net, "history_", None) or len(net.history_) == 0  # never trained on
    del torch


# The issue's reproductions through the command line: a run trained by `facekeypoints train`,
# then its model.pt or checkpoint.pt damaged as reported (400 kB zeroed, random bytes).


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory):
    from facekeypoints import cli
    from facekeypoints.synthetic import write_dataset

    root = tmp_path_factory.mktemp("cli_run")
    paths = write_dataset(root / "data", n_train=40, n_test=4)
    run = root / "run"
    assert cli.main(["train", "net1", "--data", str(paths["training"]), "--max-epochs", "2",
                     "--out", str(run), "--checkpoint-every", "1", "--device", "cpu"]) == 0
    return run, paths["training"]


def _damage(path, how):
    raw = bytearray(path.read_bytes())
    mid = len(raw) // 2
    if how == "zeroed 400 kB":
        raw[mid - 200_000:mid + 200_000] = bytes(400_000)
    else:
        raw[mid - 2048:mid + 2048] = np.random.default_rng(1).integers(
            0, 256, 4096, dtype=np.uint8).tobytes()
    path.write_bytes(bytes(raw))


@pytest.mark.parametrize("how", ["zeroed 400 kB", "random bytes"])
def test_cli_refuses_a_damaged_model_file(cli_run, tmp_path, capsys, how):
    import shutil

    from facekeypoints import cli

    run = tmp_path / "run"
    shutil.copytree(cli_run[0], run)
    assert (run / "model.pt").stat().st_size > 1_000_000
    _damage(run / "model.pt", how)
    capsys.readouterr()
    for args in (["evaluate", str(run), "--data", str(cli_run[1])],
                 ["predict", str(run), "--test", str(cli_run[1].with_name("test.csv")),
                  "-o", str(tmp_path / "out.csv")]):
        assert cli.main(args) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"error: {run / 'model.pt'} is" in err[0], err
        assert "damaged" in err[0] and "diverged" not in err[0]
    assert not (tmp_path / "out.csv").exists()


@pytest.mark.parametrize("how", ["zeroed 400 kB", "random bytes"])
def test_cli_resume_refuses_a_damaged_checkpoint(cli_run, tmp_path, capsys, how):
    import shutil

    from facekeypoints import cli

    run = tmp_path / "run"
    shutil.copytree(cli_run[0], run)
    model = (run / "model.pt").read_bytes()
    checkpoint = next((p for p in (run / "checkpoint.pt", run / ".partial" / "checkpoint.pt")
                       if p.exists()), None)
    assert checkpoint is not None, f"train left no checkpoint.pt in {sorted(os.listdir(run))}"
    _damage(checkpoint, how)
    capsys.readouterr()
    assert cli.main(["train", "net1", "--resume", str(run), "--max-epochs", "3"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and f"error: {checkpoint} is" in err[0], err
    assert "damaged" in err[0] and "diverged" not in err[0]
    assert (run / "model.pt").read_bytes() == model       # nothing trained, nothing written

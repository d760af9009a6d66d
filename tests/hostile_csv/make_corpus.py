"""Rewrite the hostile-CSV corpus in this folder, byte for byte deterministically.

    python tests/hostile_csv/make_corpus.py            # rewrite tests/hostile_csv/*.csv
    python tests/hostile_csv/make_corpus.py OUT_DIR    # write the corpus somewhere else

Each file holds exactly one fault (README.md lists the error each must give). Rows are
valid Kaggle rows except where the fault is: 30 keypoint columns then ``Image``, 9,216
one-digit pixels (the smallest valid image text, ~18 KB a row), so the whole corpus stays
well under 1 MB. The 10 MB line case is not stored here: tests/test_hostile_inputs.py
writes it into a temporary folder. tests/test_hostile_inputs.py checks that this script
reproduces the committed files exactly.
"""
from __future__ import annotations

import io
import struct
import sys
import zipfile
import zlib
from pathlib import Path

from facekeypoints.data import KEYPOINT_COLUMNS, N_PIXELS

HERE = Path(__file__).resolve().parent
HEADER = ",".join(KEYPOINT_COLUMNS) + ",Image"
TEST_HEADER = "ImageId,Image"


def pixels(r, n=N_PIXELS):
    """Image text of row r: n one-digit pixels; pixel 1 holds r (so rows are told apart)."""
    return " ".join([str(r % 10)] + [str((r * 7 + k * 13) % 10) for k in range(1, n)])


def keypoint_fields(r):
    """30 plausible coordinates (pixels, 0..96) as Kaggle writes them."""
    return [f"{20 + (r * 11 + k * 7) % 57 + 0.25 * (k % 4):.4f}" for k in range(30)]


def row(r, fields=None, image=None):
    return ",".join((keypoint_fields(r) if fields is None else fields)
                    + [pixels(r) if image is None else image])


def test_row(image_id, image=None):
    return f"{image_id},{pixels(image_id) if image is None else image}"


def lines(*items, end="\n"):
    return ("\n".join(items) + end).encode("ascii")


def with_field(r, column, value):
    fields = keypoint_fields(r)
    fields[KEYPOINT_COLUMNS.index(column)] = value
    return row(r, fields)


def with_pixel(r, k, value):
    """Row r with pixel k (1-based) written as ``value``."""
    tokens = pixels(r).split(" ")
    tokens[k - 1] = value
    return row(r, image=" ".join(tokens))


def with_gaps(r, columns):
    fields = keypoint_fields(r)
    for c in columns:
        fields[KEYPOINT_COLUMNS.index(c)] = ""
    return row(r, fields)


def zipped(members, forge=None) -> bytes:
    """A zip holding ``members`` ({name: bytes}), stored (not deflated: zlib builds differ in
    what they write, stored bytes do not) with fixed timestamps; ``forge`` edits the first
    central directory entry (offsets as in the zip specification)."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_STORED) as z:
        for name, content in members.items():
            info = zipfile.ZipInfo(name, date_time=(2014, 1, 1, 0, 0, 0))
            info.create_system = 3
            z.writestr(info, content)
    raw = bytearray(buf.getvalue())
    if forge:
        forge(raw, raw.index(b"PK\x01\x02"))
    return bytes(raw)


def gzipped(data: bytes) -> bytes:
    """A gzip file of ``data`` (under 64 kB) in one stored deflate block, written by hand so
    that it does not depend on the zlib build."""
    n = len(data)
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff"       # header, mtime 0
            + b"\x01" + struct.pack("<HH", n, n ^ 0xFFFF) + data   # final stored block
            + struct.pack("<II", zlib.crc32(data), n))


def _claims_4gb(raw, at):            # the uncompressed size field: a zip bomb's claim
    raw[at + 24:at + 28] = (0xF0000000).to_bytes(4, "little")


def _encrypted(raw, at):             # general purpose flag bit 0: encrypted
    raw[at + 8] |= 0x01


def archives() -> dict[str, bytes]:
    """Zip and gzip files saved under .csv names (they are recognised by their bytes)."""
    return {
        "zip_two_csvs.csv": zipped({"training.csv": b"a\n", "test.csv": b"b\n"}),
        "zip_no_csv.csv": zipped({"notes.txt": b"no data here\n"}),
        "zip_bad_member.csv": zipped({"training.csv": lines(HEADER, "1,2")}),
        "zip_bomb.csv": zipped({"training.csv": b"a\n"}, forge=_claims_4gb),
        "zip_encrypted.csv": zipped({"training.csv": b"a\n"}, forge=_encrypted),
        "gzip_cut.csv": gzipped(lines(HEADER))[:100],
        "gzip_header_only.csv": gzipped(lines(HEADER)),
    }


def corpus() -> dict[str, bytes]:
    """File name -> content. One fault per file. Where a file has two data rows the first
    is valid, so the error must name the second."""
    good1, good2 = row(1), row(2)
    dup_header = HEADER.replace("left_eye_center_y", "nose_tip_x", 1)
    return {
        # structure
        "empty.csv": b"",
        "blank_lines_only.csv": b"\n  \n\r\n\t\n",
        "header_only.csv": lines(HEADER),
        "missing_header.csv": lines(good1),
        "test_missing_header.csv": lines(test_row(1)),
        "duplicated_column.csv": lines(dup_header, good1),
        "wrong_column_count.csv": lines(HEADER, good1, row(2, keypoint_fields(2)[:-1])),
        "extra_column.csv": lines(HEADER, row(1, keypoint_fields(1) + ["50.0"])),
        "truncated_line.csv": lines(HEADER, good1, good2[:len(good2) // 2], end=""),
        "truncated_in_keypoints.csv": lines(HEADER, good1[:150], end=""),
        "unbalanced_quote.csv": lines(HEADER, with_field(1, "nose_tip_y", '"51.5')),
        "cr_in_header.csv": lines(HEADER.replace(",nose_tip_x,", ",nose_tip_x\r,"), good1),
        # numbers
        "text_in_keypoint.csv": lines(HEADER, good1, with_field(2, "nose_tip_x", "left")),
        "inf_keypoint.csv": lines(HEADER, with_field(1, "mouth_left_corner_y", "inf")),
        "keypoint_out_of_range.csv": lines(HEADER, with_field(1, "right_eye_center_x", "1e300")),
        "underscore_in_keypoint.csv": lines(HEADER, with_field(1, "nose_tip_y", "5_0.5")),
        "no_complete_rows.csv": lines(HEADER, with_gaps(1, ["left_eye_center_y", "nose_tip_x"])),
        # pixels
        "wrong_pixel_count.csv": lines(HEADER, row(1, image=pixels(1, N_PIXELS - 1))),
        "too_many_pixels.csv": lines(HEADER, row(1, image=pixels(1, N_PIXELS + 1))),
        "pixel_256.csv": lines(HEADER, good1, with_pixel(2, 100, "256")),
        "pixel_minus_1.csv": lines(HEADER, with_pixel(1, 5, "-1")),
        "text_in_pixel.csv": lines(HEADER, with_pixel(1, 9000, "abc")),
        "pixel_fraction.csv": lines(HEADER, with_pixel(1, 2, "2.5")),
        "comma_separated_pixels.csv": lines(HEADER, row(1, image=pixels(1).replace(" ", ";"))),
        # encodings
        "non_utf8.csv": lines(HEADER)                             # a Latin-1 byte 0xe9
        + with_field(1, "right_eye_center_y", "caf\xe9").encode("latin-1") + b"\n",
        "utf16.csv": (HEADER + "\r\n").encode("utf-16"),
        "zip_archive.csv": b"PK\x03\x04\x14\x00\x00\x00\x08\x00\x9c\xa1\xff\xfe\n\x01\x02\x00",
        # test files (ImageId,Image)
        "test_bad_image_id.csv": lines(TEST_HEADER, test_row(1), "x7," + pixels(7)),
        "test_fraction_image_id.csv": lines(TEST_HEADER, "2.5," + pixels(2)),
        "test_huge_image_id.csv": lines(TEST_HEADER, "1e30," + pixels(3)),
        "test_missing_image_id_field.csv": lines(TEST_HEADER, test_row(1), pixels(2)),
        "test_wrong_pixel_count.csv": lines(TEST_HEADER, test_row(1, pixels(1, 96))),
        # compressed files
        **archives(),
    }


def main(out=HERE):
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    for name, content in corpus().items():
        (out / name).write_bytes(content)
    return out


if __name__ == "__main__":
    main(*(sys.argv[1:2] or [HERE]))

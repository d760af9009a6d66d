"""Procedural 96x96 grayscale faces with exact keypoints, written as Kaggle CSV files.

Why this exists: the Kaggle "Facial Keypoints Detection" data cannot be downloaded on the
machines this library is built and tested on, yet every example, test and benchmark needs a
data set in exactly that format.  This module draws one.  The faces are a fair stand-in for
the real ones: the 15 keypoints have the Kaggle mean positions and about the same spread
(predicting the mean keypoints gives an RMSE of about 3.5 px), each keypoint is a visible
feature of the image (pupil centre, eye and eyebrow ends, nose tip, mouth corners, lip
edges), and faces vary in pose, shape, expression, lighting, texture, blur, noise and
occluders (glasses, hair fringe, a hand, beards) that hide but never move keypoints.  The
training file has Kaggle's pattern of missing values (about 30% complete rows).

Since generator version 2 the faces also turn in depth (yaw and pitch, see ``_head_pose``:
the nose swings across the face, the far eye narrows, more of one cheek shows), are lit by
a lamp from a random direction over their depth (the nose and the eye sockets shade), are
re-framed the way crops of real faces are (a least-squares fit of the eye centres and mouth
corners), and are blurred after their grain, as photos resampled to 96x96 are. Each of these
was kept because it lowered the error on real faces of a net trained on these alone
(``benchmarks/sim_to_real.py``, table in the README). Version 3 exposes the photo for the
face (bright skin, surroundings mostly darker, as in real crops), and adds nasolabial folds, a
darker lip line, smiles (corners raised and wider, often open on the teeth) and shadows
under the eyes.

Coordinates: pixel column ``i`` spans ``[i, i + 1)``, so its centre is at ``x = i + 0.5``
(the same for rows and ``y``).  Mirroring an image (``img[:, ::-1]``) therefore maps ``x`` to
``96 - x``, which is the library's flip rule.  Left and right are the subject's: the subject's
left eye is on the image's right (larger ``x``), as in Kaggle.

The generator is a pipeline of three pure steps, all vectorised over chunks of faces:

* :func:`sample_params` draws a :class:`FaceParams` (one array per parameter, one entry per
  face); faces are drawn in blocks of 256 from per-block seeds, so the first ``k`` faces of
  ``sample_params(n, seed)`` do not depend on ``n``.
* :func:`keypoints` maps parameters to the 30 keypoint coordinates (pixels, Kaggle order).
* :func:`render` maps parameters to uint8 images.

:func:`mirror` maps parameters to those of the mirror-image face: its keypoints are the flip
rule applied to the original keypoints and its rendering is exactly the mirrored image
(noise and texture fields are mirrored too), which the tests check.

:func:`write_dataset` writes ``training.csv``, ``test.csv`` and ``IdLookupTable.csv``;
:func:`ensure_default_dataset` keeps one default set in a per-user cache directory.

Importing this module registers that default set with
:func:`facekeypoints.data.register_default_dataset`, so that ``load(path=None)`` reads it;
``import facekeypoints`` imports this module. ``data`` never imports ``synthetic``: this module
builds on it.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import sys
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from ._cache import cache_dir, cache_write_error
from ._safe_io import atomic_write, write_json
from . import _head_pose
from ._head_pose import cos_sin as _cos_sin
from .data import IMAGE_SIDE, KEYPOINT_COLUMNS, N_PIXELS, register_default_dataset
from .layout import KAGGLE

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "FaceParams", "sample_params", "keypoints", "render", "mirror", "flip_keypoints",
    "render_faces", "missing_mask", "lookup_features", "training_faces", "DatasetSummary",
    "write_dataset", "default_data_dir", "ensure_default_dataset", "summarize",
    "DEFAULT_SEED", "DEFAULT_N_TRAIN", "DEFAULT_N_TEST", "GENERATOR_VERSION",
    "TRAINING_CSV", "TEST_CSV", "LOOKUP_CSV",
]

#: Bump when the generator's output changes; it names the cache folder.
GENERATOR_VERSION = 3
# The random streams' version: version 3 draws the faces of version 2 (the same parameters,
# in the same order) and adds its own draws after them, so that each change was measured on
# the same faces.
_STREAM_VERSION = 2
DEFAULT_SEED = 42
DEFAULT_N_TRAIN = 7049     # Kaggle's training.csv rows
DEFAULT_N_TEST = 1783      # Kaggle's test.csv rows
TRAINING_CSV, TEST_CSV, LOOKUP_CSV = "training.csv", "test.csv", "IdLookupTable.csv"
_MARKER = "COMPLETE.json"

_BLOCK = 256                # faces per parameter block (part of the generator's definition)
_WRITE_CHUNK = 512          # faces rendered and formatted at a time when writing CSV
_HALF = IMAGE_SIDE / 2.0
# Pose limits (radians, log scale); feature windows are sized for them.
_ROT_MAX = 0.3
_LOG_SCALE_MAX = 0.22
# Pixel-centre coordinates relative to the image centre: -47.5 ... 47.5, exactly symmetric.
_GRID = (np.arange(IMAGE_SIDE, dtype=np.float32) + np.float32(0.5) - np.float32(_HALF))

# --------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------

# Parameters whose sign flips under mirroring (x-like offsets, rotation, x-gradients).
_NEGATE = frozenset({
    "tx", "rot", "yaw", "lamp_u", "light_x", "bg_grad_x", "gaze_u", "highlight_u", "nose_u",
    "mouth_u", "fringe_slope", "fringe_phase", "hand_u", "hand_dir_u",
})


@dataclass(frozen=True)
class FaceParams:
    """One array per named parameter, each with one entry per face.

    Parameters of paired features end in ``_L`` (subject's left) or ``_R`` and are expressed
    in outward coordinates, so mirroring a face only swaps the pairs, negates the x-like
    parameters in ``_NEGATE`` and toggles ``flipped`` (which mirrors the noise fields).
    ``len(params)`` is the number of faces, ``params[name]`` one parameter's array.

    Parameters
    ----------
    values : Mapping of str to numpy.ndarray
        One array of length n per parameter name.
    """

    values: Mapping[str, np.ndarray]

    def __len__(self) -> int:
        return len(next(iter(self.values.values())))

    def __getitem__(self, name: str) -> np.ndarray:
        return self.values[name]

    def __contains__(self, name: str) -> bool:
        return name in self.values

    @property
    def names(self) -> tuple[str, ...]:
        """The parameter names."""
        return tuple(self.values)

    def take(self, index: slice | np.ndarray) -> "FaceParams":
        """The faces selected by ``index``.

        Parameters
        ----------
        index : slice or numpy.ndarray
            A slice, integer array or boolean mask over the faces.

        Returns
        -------
        FaceParams
            The selected faces' parameters.
        """
        return FaceParams({k: np.asarray(v[index]) for k, v in self.values.items()})

    def replace(self, **changes: np.ndarray | float) -> "FaceParams":
        """A copy with some parameters replaced.

        Parameters
        ----------
        **changes : array-like or scalar
            New values by parameter name, broadcast to the number of faces.

        Returns
        -------
        FaceParams
            The copy.

        Raises
        ------
        KeyError
            For a name that is not a face parameter.
        """
        n = len(self)
        new = dict(self.values)
        for k, v in changes.items():
            if k not in new:
                raise KeyError(f"unknown face parameter {k!r}")
            new[k] = np.broadcast_to(np.asarray(v, dtype=new[k].dtype), (n,)).copy()
        return FaceParams(new)

    @staticmethod
    def concat(parts: "Iterable[FaceParams]") -> "FaceParams":
        """The faces of several ``FaceParams``, one after another.

        Parameters
        ----------
        parts : iterable of FaceParams
            At least one, all with the same parameter names.

        Returns
        -------
        FaceParams
            All the faces, in order.
        """
        parts = list(parts)
        return FaceParams({k: np.concatenate([p.values[k] for p in parts])
                           for k in parts[0].values})


def _sample_block(rng: np.random.Generator, m: int) -> dict[str, np.ndarray]:
    """Draw parameters for ``m`` faces.  Distances are in face units (pixels at scale 1)."""
    N = rng.normal
    U = rng.uniform

    def clipped(mean, sd, lo, hi):
        return np.clip(N(mean, sd, m), lo, hi)

    def side(base, sd, lo=-np.inf, hi=np.inf):
        """Left and right values: a shared base plus a small bounded asymmetry."""
        return tuple(np.clip(base + np.clip(N(0, sd, m), -2.5 * sd, 2.5 * sd), lo, hi)
                     for _ in range(2))

    def coin(p):
        return (rng.random(m) < p).astype(np.float64)

    p: dict[str, np.ndarray] = {}
    # Pose: the main source of keypoint spread.
    p["scale"] = np.exp(clipped(0.0, 0.065, -_LOG_SCALE_MAX, _LOG_SCALE_MAX))
    p["rot"] = clipped(0.0, 0.13, -_ROT_MAX, _ROT_MAX)
    p["tx"] = clipped(0.0, 1.8, -6.0, 6.0)
    p["ty"] = clipped(0.0, 1.8, -6.0, 6.0)
    # Head, skin, background, light.
    p["head_a"] = U(36.0, 47.0, m)
    p["head_b"] = U(46.0, 60.0, m)
    p["head_v0"] = U(-4.0, 1.0, m)
    p["jaw"] = U(0.12, 0.34, m)
    # Photos are exposed for the face: skin is bright, and what is around it mostly darker.
    p["skin"] = U(0.55, 0.95, m)
    p["bg"] = np.clip(p["skin"] + U(-0.85, 0.2, m), 0.03, 0.97)
    p["bg_grad_x"] = N(0, 0.003, m)
    p["bg_grad_y"] = N(0, 0.003, m)
    p["bg_texture"] = U(0.04, 0.3, m)
    p["light_x"] = N(0, 0.004, m)
    p["light_y"] = N(0, 0.003, m)
    p["shade"] = U(0.1, 0.4, m)
    p["ear"] = U(0.0, 1.0, m)
    p["texture"] = U(0.01, 0.06, m)
    # Hair.
    p["hair"] = np.clip(rng.beta(1.3, 3.0, m) * 0.85 + 0.02, 0.02, 0.8)
    p["hairline"] = U(-50.0, -28.0, m)
    p["hair_curve"] = U(0.006, 0.016, m)
    p["hair_long"] = coin(0.35) * U(10.0, 60.0, m)
    p["fringe"] = coin(0.1)
    p["fringe_depth"] = U(-28.0, -19.0, m)
    p["fringe_slope"] = N(0, 0.12, m)
    p["fringe_amp"] = U(0.5, 2.5, m)
    p["fringe_freq"] = U(0.4, 0.9, m)
    p["fringe_phase"] = U(-np.pi, np.pi, m)
    # Eyes: midpoint of the corners at (+-(eye_sep + eye_dx), eye_v + eye_dy).
    p["eye_sep"] = clipped(18.3, 0.8, 15.5, 21.0)
    p["eye_v"] = clipped(-10.2, 0.9, -13.5, -7.0)
    p["eye_dx_L"], p["eye_dx_R"] = side(0.0, 0.35)
    p["eye_dy_L"], p["eye_dy_R"] = side(0.0, 0.3)
    hw = clipped(7.0, 0.45, 5.8, 8.4)
    p["eye_hw_L"], p["eye_hw_R"] = side(hw, 0.15, 5.5, 8.8)
    tilt = clipped(0.02, 0.05, -0.12, 0.16)
    p["eye_tilt_L"], p["eye_tilt_R"] = side(tilt, 0.02)
    open_up = U(2.4, 3.6, m) * np.where(rng.random(m) < 0.08, 0.6, 1.0)
    p["eye_up_L"], p["eye_up_R"] = side(open_up, 0.12, 1.2, 4.6)
    open_lo = U(2.0, 3.2, m)
    p["eye_lo_L"], p["eye_lo_R"] = side(open_lo, 0.1, 1.2, 3.6)
    p["gaze_u"] = clipped(0.0, 0.6, -1.6, 1.6)
    p["gaze_v"] = clipped(-0.2, 0.25, -0.8, 0.5)
    p["iris_r"] = U(3.2, 4.0, m)
    p["iris"] = U(0.02, 0.25, m)
    p["sclera"] = U(0.0, 0.22, m)          # brighter than skin by this much
    p["highlight"] = coin(0.7) * U(0.3, 0.8, m)
    p["highlight_u"] = U(-1.0, 1.0, m)
    p["socket"] = U(0.06, 0.26, m)
    # Eyebrows: inner end (+-brow_in, brow_v + raise), outer end (+-brow_out, ...).
    p["brow_v"] = clipped(-18.6, 0.9, -22.0, -15.5)
    raise_ = clipped(0.0, 0.9, -2.0, 2.8)
    p["brow_raise_L"], p["brow_raise_R"] = side(raise_, 0.35)
    p["brow_in_L"], p["brow_in_R"] = side(clipped(8.4, 0.8, 6.0, 11.0), 0.3)
    p["brow_out_L"], p["brow_out_R"] = side(clipped(32.0, 1.3, 28.5, 35.5), 0.4)
    p["brow_out_dv_L"], p["brow_out_dv_R"] = side(clipped(0.5, 0.9, -2.0, 3.0), 0.3)
    p["brow_arch_L"], p["brow_arch_R"] = side(U(0.8, 3.0, m), 0.2, 0.3, 3.5)
    p["brow_thick"] = U(1.3, 2.8, m)
    p["brow"] = U(0.22, 0.55, m)           # darker than skin by this much
    # Nose: tip at (nose_u, nose_v).
    p["nose_u"] = clipped(0.2, 0.5, -2.0, 2.0)
    p["nose_v"] = clipped(14.7, 1.1, 11.5, 18.0)
    p["nose_w"] = U(3.4, 5.0, m)
    p["nose_len"] = U(11.0, 17.0, m)
    # Mouth: centre (mouth_u, mouth_v); corners (mouth_u +- hw, mouth_v - smile).
    p["mouth_u"] = clipped(0.2, 0.6, -2.5, 2.5)
    p["mouth_v"] = clipped(28.2, 1.3, 24.5, 32.0)
    p["mouth_hw_L"], p["mouth_hw_R"] = side(clipped(15.2, 1.5, 11.0, 19.0), 0.35)
    smile = clipped(0.3, 1.0, -1.8, 3.0)
    p["smile_L"], p["smile_R"] = side(smile, 0.3)
    p["mouth_open"] = np.where(rng.random(m) < 0.3, U(0.6, 5.0, m), 0.0)
    p["lip_up"] = U(2.2, 3.6, m)
    p["lip_lo"] = U(1.9, 3.3, m)
    p["lip"] = U(0.12, 0.42, m)            # darker than skin by this much
    p["teeth"] = coin(0.6)
    # Beards: how dense (0: none), how far up the cheeks it reaches, and a moustache.
    p["beard"] = coin(0.15) * U(0.4, 0.9, m)
    p["beard_reach"] = U(0.0, 1.0, m)
    p["moustache"] = coin(0.6)
    # Occluders.
    p["glasses"] = coin(0.12)
    p["glasses_tone"] = U(0.0, 0.3, m)
    p["glasses_size"] = U(0.95, 1.2, m)
    p["hand"] = coin(0.05)
    p["hand_u"] = rng.choice([-1.0, 1.0], m) * U(14.0, 34.0, m)
    p["hand_v"] = U(38.0, 54.0, m)
    ang = U(-0.5, 0.5, m) - np.pi / 2
    p["hand_dir_u"], p["hand_dir_v"] = np.cos(ang), np.sin(ang)
    p["hand_size"] = U(0.85, 1.15, m)
    # Camera.
    p["blur"] = U(0.3, 1.7, m)
    p["noise"] = U(0.0, 0.06, m)
    p["contrast"] = U(0.7, 1.25, m)
    p["gamma"] = np.exp(U(-0.4, 0.4, m))
    p["brightness"] = N(0.0, 0.06, m)
    # Turning in depth (see _head_pose): yaw and pitch, the head's and the nose's depth.
    p["yaw"] = clipped(0.0, 0.32, -_head_pose.YAW_MAX, _head_pose.YAW_MAX)
    p["pitch"] = clipped(0.0, 0.17, -_head_pose.PITCH_MAX, _head_pose.PITCH_MAX)
    p["head_depth"] = U(0.4, 0.5, m)
    p["nose_depth"] = U(8.0, 13.0, m)
    # A lamp lighting the turned face (see _head_pose.lambert): its direction and the ambient.
    p["lamp_u"] = clipped(0.0, 0.55, -0.9, 0.9)
    p["lamp_v"] = U(-0.65, 0.25, m)
    p["ambient"] = U(0.2, 0.7, m)
    p["flipped"] = np.zeros(m, dtype=bool)
    p["noise_seed"] = rng.integers(0, 2**63 - 1, m, dtype=np.int64)
    # Nasolabial folds: soft creases from the nose's wings to beyond the mouth's corners.
    p["fold_L"], p["fold_R"] = side(coin(0.8) * U(0.05, 0.3, m), 0.03, 0.0, 0.35)
    p["fold_out"] = U(1.5, 4.0, m)
    # Shadows under the eyes, from none to dark, just below the lower lid.
    p["bags_L"], p["bags_R"] = side(coin(0.7) * U(0.05, 0.35, m), 0.03, 0.0, 0.4)
    p["bags_drop"] = U(2.0, 4.5, m)
    # Smiles: the corners rise and widen, the centre drops a little, and most smiles open
    # on the teeth.
    smiling = coin(0.4)
    lift = smiling * U(1.0, 3.5, m)
    for sd in ("L", "R"):
        p["smile_" + sd] = p["smile_" + sd] + lift
        p["mouth_hw_" + sd] = p["mouth_hw_" + sd] + 0.8 * lift
    p["mouth_v"] = p["mouth_v"] + 0.5 * lift
    grin = smiling * coin(0.6)
    p["mouth_open"] = np.where(grin > 0, U(2.0, 6.0, m), p["mouth_open"])
    p["teeth"] = np.maximum(p["teeth"], grin)
    # Slide the crop so that every keypoint lies inside it (as crops of real faces are
    # kept only when they do): the shift is clipped to the range that keeps them in.
    zero = np.zeros(m)
    kp0 = keypoints(FaceParams({**p, "tx": zero, "ty": zero}))
    margin = 1.0
    for name, xy in (("tx", kp0[:, 0::2]), ("ty", kp0[:, 1::2])):
        p[name] = np.clip(p[name], margin - xy.min(1), IMAGE_SIDE - margin - xy.max(1))
    return p


def sample_params(n: int, seed: int = 0) -> FaceParams:
    """Random parameters for ``n`` faces, deterministic in ``seed``.

    Faces are drawn in blocks of 256, each from its own seed derived from ``(seed, block)``,
    so a face does not depend on how many faces were asked for.

    Parameters
    ----------
    n : int
        Number of faces (>= 0).
    seed : int, default 0
        The random seed.

    Returns
    -------
    FaceParams
        One entry per face for every parameter.

    Examples
    --------
    >>> from facekeypoints import synthetic
    >>> params = synthetic.sample_params(3, seed=1)
    >>> len(params), synthetic.keypoints(params).shape
    (3, (3, 30))
    """
    n = int(n)
    if n < 0:
        raise ValueError("n must be >= 0")
    blocks = []
    for b in range(max(1, -(-n // _BLOCK))):
        rng = np.random.default_rng(np.random.SeedSequence([int(seed), _STREAM_VERSION, b]))
        blocks.append(FaceParams(_sample_block(rng, _BLOCK)))
    return FaceParams.concat(blocks).take(slice(0, n))


def mirror(params: FaceParams) -> FaceParams:
    """Parameters of the mirror-image faces (left and right swapped, x negated).

    Their keypoints are ``flip_keypoints`` of the originals' and their images the originals'
    mirrored (``img[:, ::-1]``).

    Parameters
    ----------
    params : FaceParams
        The faces to mirror.

    Returns
    -------
    FaceParams
        The mirrored faces.
    """
    out = {}
    for k, v in params.values.items():
        if k.endswith("_L"):
            out[k] = params.values[k[:-2] + "_R"].copy()
        elif k.endswith("_R"):
            out[k] = params.values[k[:-2] + "_L"].copy()
        elif k in _NEGATE:
            out[k] = -v
        elif k == "flipped":
            out[k] = ~v
        else:
            out[k] = v.copy()
    return FaceParams(out)


# --------------------------------------------------------------------------------------------
# Geometry: keypoints in face coordinates, then the pose transform
# --------------------------------------------------------------------------------------------

def _eye_points(p, s: str, sign: float):
    """Iris centre, inner and outer corner of one eye in face coordinates (u, v)."""
    mu = sign * (p["eye_sep"] + p["eye_dx_" + s])
    mv = p["eye_v"] + p["eye_dy_" + s]
    hw = p["eye_hw_" + s]
    ct, st = _cos_sin(p["eye_tilt_" + s])
    centre = (mu + p["gaze_u"], mv + p["gaze_v"])
    inner = (mu - sign * hw * ct, mv + hw * st)
    outer = (mu + sign * hw * ct, mv - hw * st)
    return centre, inner, outer


def _brow_points(p, s: str, sign: float):
    r = p["brow_raise_" + s]
    inner = (sign * p["brow_in_" + s], p["brow_v"] + r)
    outer = (sign * p["brow_out_" + s], p["brow_v"] + p["brow_out_dv_" + s] + 0.6 * r)
    return inner, outer


def _face_points(p) -> np.ndarray:
    """The 15 keypoints in face coordinates, shape (n, 15, 2), in KEYPOINT_COLUMNS order."""
    lc, li, lo = _eye_points(p, "L", 1.0)
    rc, ri, ro = _eye_points(p, "R", -1.0)
    lbi, lbo = _brow_points(p, "L", 1.0)
    rbi, rbo = _brow_points(p, "R", -1.0)
    nose = (p["nose_u"], p["nose_v"])
    mu, mv, op = p["mouth_u"], p["mouth_v"], p["mouth_open"]
    ml = (mu + p["mouth_hw_L"], mv - p["smile_L"])
    mr = (mu - p["mouth_hw_R"], mv - p["smile_R"])
    top = (mu, mv - 0.5 * op - p["lip_up"])
    bottom = (mu, mv + 0.5 * op + p["lip_lo"])
    pts = [lc, rc, li, lo, ri, ro, lbi, lbo, rbi, rbo, nose, ml, mr, top, bottom]
    return np.stack([np.stack([np.asarray(a, np.float64), np.asarray(b, np.float64)], -1)
                     for a, b in pts], axis=1)


def _pose_alignment(p, fp=None):
    """The re-framing of the turned faces, ``(s, ou, ov)`` (``_head_pose.alignment``)."""
    fp = _face_points(p) if fp is None else fp

    def col(name):
        return np.asarray(p[name], np.float64)

    def pt(i):
        return fp[:, i, 0], fp[:, i, 1]

    return _head_pose.alignment(col, (pt(0), pt(1)), (pt(11), pt(12)))


def _turned(p, fp):
    """Face points ``fp`` (n, k, 2) moved by the faces' yaw and pitch."""
    if "yaw" not in p:
        return fp

    def col(name):
        return np.asarray(p[name], np.float64)[:, None]

    align = tuple(a[:, None] for a in _pose_alignment(p, fp))
    x, y = _head_pose.forward(col, fp[..., 0], fp[..., 1], align)
    return np.stack([x, y], axis=-1)


def keypoints(params: FaceParams) -> np.ndarray:
    """The faces' keypoints in pixels.

    Parameters
    ----------
    params : FaceParams
        The faces.

    Returns
    -------
    numpy.ndarray
        float64 (n, 30), in KEYPOINT_COLUMNS order, complete (no gaps).
    """
    p = params.values
    fp = _turned(p, _face_points(p))
    c, s = _cos_sin(p["rot"])
    k = p["scale"]
    u, v = fp[..., 0], fp[..., 1]
    x = _HALF + p["tx"][:, None] + k[:, None] * (c[:, None] * u - s[:, None] * v)
    y = _HALF + p["ty"][:, None] + k[:, None] * (s[:, None] * u + c[:, None] * v)
    out = np.empty((len(params), 30), dtype=np.float64)
    out[:, 0::2] = x
    out[:, 1::2] = y
    return out


def flip_keypoints(kp: np.ndarray) -> np.ndarray:
    """The library's flip rule in pixels: x -> 96 - x, then swap the FLIP_INDICES pairs.

    This is ``layout.KAGGLE.flip_pixels``: the flip rule exists once, in the layout.

    Parameters
    ----------
    kp : numpy.ndarray
        Keypoints in pixels, shape (..., 30), in KEYPOINT_COLUMNS order.

    Returns
    -------
    numpy.ndarray
        float64, the keypoints of the mirrored images (a copy).

    Examples
    --------
    >>> import numpy as np
    >>> from facekeypoints import synthetic
    >>> kp = synthetic.keypoints(synthetic.sample_params(2))
    >>> np.allclose(synthetic.flip_keypoints(synthetic.flip_keypoints(kp)), kp)
    True
    """
    return KAGGLE.flip_pixels(np.asarray(kp, dtype=np.float64))


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_F = np.float32
_SIN_MAX = float(np.sin(_ROT_MAX))
_SCALE_MAX = float(np.exp(_LOG_SCALE_MAX))
#: Debug switch for tests: evaluate every feature on the whole image instead of a window.
_FULL_WINDOWS = False


def _col(p, name):
    return np.asarray(p[name], dtype=_F)[:, None, None]


def _alpha(d, px):
    """Antialiased coverage of a shape from its signed distance ``d`` (face units, inside
    negative) and the pixel size ``px`` in face units: a one-pixel linear ramp.  It is
    exactly zero from half a pixel outside the shape on, which the feature windows rely on."""
    a = d / px
    np.subtract(_F(0.5), a, out=a)
    return np.clip(a, _F(0.0), _F(1.0), out=a)


def _paint(img, a, value):
    """Alpha-composite ``value`` over ``img`` in place."""
    img += a * (value - img)


class _Region:
    """Pixels of some faces of a chunk: the whole image, or a window of fixed size placed per
    face, with the face coordinates (u, v) of each pixel centre (computed on first use).

    Small features are drawn in windows that contain all pixels they can touch, whatever
    the pose; the image outside is left exactly as it was, so windows change speed only.
    """

    def __init__(self, p, idx=None, rows=None, cols=None):
        # p: the parameters of the faces of this region; idx: their rows in the chunk arrays
        # (None: all faces of the chunk); rows/cols: per-face window pixel indices (None:
        # the whole image).
        self.p = p
        self.idx = idx
        m = len(p["scale"])
        self.full = rows is None
        if self.full:
            rows = np.arange(IMAGE_SIDE)[None, :, None]
            cols = np.arange(IMAGE_SIDE)[None, None, :]
        self.rows, self.cols = rows, cols
        self.fi = (np.arange(m) if idx is None else np.asarray(idx))[:, None, None]
        self.X = _GRID[cols]
        self.Y = _GRID[rows]
        self.px = (1.0 / np.asarray(p["scale"], np.float64)).astype(_F)[:, None, None]
        self._uv = None
        #: The whole chunk's (u, v), shared by the regions cut from it (None: solve here).
        self.chunk_uv = None

    def _solve(self):
        if self._uv is None:
            c, s = _cos_sin(np.asarray(self.p["rot"], np.float64))
            c = c.astype(_F)[:, None, None]
            s = s.astype(_F)[:, None, None]
            dx = self.X - _col(self.p, "tx")
            dy = self.Y - _col(self.p, "ty")
            u, v = (c * dx + s * dy) * self.px, (c * dy - s * dx) * self.px
            if "yaw" in self.p:
                u, v = _head_pose.inverse(self.col, u, v, (self.col("pose_s"),
                                          self.col("pose_ou"), self.col("pose_ov")))
            self._uv = (u, v)
        return self._uv

    def _coords(self):
        if self._uv is None:
            if self.chunk_uv is not None:
                # The turn's inverse is solved once per chunk; regions read their pixels.
                self._uv = (self.get(self.chunk_uv[0]), self.get(self.chunk_uv[1]))
            else:
                self._solve()
        return self._uv

    @property
    def u(self):
        return self._coords()[0]

    @property
    def v(self):
        return self._coords()[1]

    def col(self, name):
        return _col(self.p, name)

    def window(self, cu, cv, hu, hv):
        """Windows (same faces) around face point (cu, cv) holding a face-unit box of half
        sizes (hu, hv) under any pose; the whole image while ``_FULL_WINDOWS`` is set."""
        if _FULL_WINDOWS:
            return self
        p = self.p
        if "yaw" in p:
            gu, gv = _head_pose.window_growth(p)
            hu, hv = hu + gu * (hu + hv), hv + gv * (hu + hv)

            def col(name):
                return np.asarray(p[name], np.float64)

            cu, cv = _head_pose.forward(col, np.asarray(cu, np.float64),
                                        np.asarray(cv, np.float64),
                                        (p["pose_s"], p["pose_ou"], p["pose_ov"]))
        W = min(IMAGE_SIDE, 2 * int(np.ceil((hu + hv * _SIN_MAX) * _SCALE_MAX)) + 4)
        H = min(IMAGE_SIDE, 2 * int(np.ceil((hv + hu * _SIN_MAX) * _SCALE_MAX)) + 4)
        c, s = _cos_sin(p["rot"])
        cx = _HALF + p["tx"] + p["scale"] * (c * cu - s * cv)
        cy = _HALF + p["ty"] + p["scale"] * (s * cu + c * cv)
        ox = np.clip(np.floor(cx - W / 2), 0, IMAGE_SIDE - W).astype(np.intp)
        oy = np.clip(np.floor(cy - H / 2), 0, IMAGE_SIDE - H).astype(np.intp)
        rows = oy[:, None, None] + np.arange(H)[None, :, None]
        cols = ox[:, None, None] + np.arange(W)[None, None, :]
        return self._child(_Region(p, self.idx, rows, cols))

    def _child(self, region):
        region.chunk_uv = self.chunk_uv
        return region

    def subset(self, mask):
        """The same pixels of the faces where ``mask`` holds (None if there are none)."""
        sel = np.flatnonzero(mask)
        if len(sel) == 0:
            return None
        idx = sel if self.idx is None else self.idx[sel]
        if self.full:
            return self._child(_Region({k: v[sel] for k, v in self.p.items()}, idx))
        return self._child(_Region({k: v[sel] for k, v in self.p.items()}, idx,
                                   self.rows[sel], self.cols[sel]))

    def _flat(self):
        if not hasattr(self, "_flat_index"):
            self._flat_index = (self.fi * N_PIXELS + self.rows * IMAGE_SIDE
                                + self.cols).ravel()
        return self._flat_index

    def get(self, arr):
        """This region's pixels of a (chunk, 96, 96) array (the array itself when whole)."""
        if self.full:
            return arr if self.idx is None else arr[self.idx]
        return arr.reshape(-1).take(self._flat()).reshape(self.rows.shape[0],
                                                           self.rows.shape[1],
                                                           self.cols.shape[2])

    def put(self, arr, win):
        """Write ``win`` back into this region of ``arr``."""
        if self.full:
            if self.idx is None:
                if win is not arr:
                    arr[...] = win
            else:
                arr[self.idx] = win
        else:
            arr.reshape(-1)[self._flat()] = win.reshape(-1)


def _noise_fields(p):
    """Per-face random fields (pixel noise and two smooth textures), mirrored when the face
    is, so a mirrored parameter set renders the exactly mirrored image."""
    m = len(p["noise_seed"])
    noise = np.empty((m, IMAGE_SIDE, IMAGE_SIDE), _F)
    coarse = np.empty((m, 2, 8, 8), _F)
    for i, sd in enumerate(p["noise_seed"]):
        rng = np.random.default_rng(int(sd))
        noise[i] = rng.standard_normal((IMAGE_SIDE, IMAGE_SIDE), dtype=_F)
        coarse[i] = rng.standard_normal((2, 8, 8), dtype=_F)
    # Smooth textures: Gaussian bumps on an 8x8 lattice, summed by two small matmuls.
    nodes = (np.arange(8, dtype=_F) - _F(3.5)) * _F(14.0)
    g = np.exp(-((_GRID[:, None] - nodes[None, :]) ** 2) / _F(2 * 8.0 ** 2)).astype(_F)
    tex = np.matmul(g, np.matmul(coarse, g.T))          # (m, 2, 96, 96)
    flip = np.asarray(p["flipped"], bool)
    noise[flip] = noise[flip][:, :, ::-1]
    tex[flip] = tex[flip][..., ::-1]
    return noise, np.ascontiguousarray(tex[:, 0]), np.ascontiguousarray(tex[:, 1])


def _blur(img, sigma):
    """Separable Gaussian blur with a per-face sigma; symmetric pairs are added first so a
    mirrored image blurs to the exactly mirrored result."""
    r = 3
    k = np.arange(1, r + 1, dtype=_F)
    sig = np.maximum(np.asarray(sigma, _F), _F(1e-3))[:, None]
    w = np.exp(-(k[None, :] ** 2) / (_F(2) * sig ** 2))
    norm = _F(1) + _F(2) * w.sum(1, keepdims=True)
    w0 = (_F(1) / norm)[:, :, None]
    w = (w / norm)[:, :, None]
    n = IMAGE_SIDE
    for axis in (1, 2):
        pad = [(0, 0)] * 3
        pad[axis] = (r, r)
        q = np.pad(img, pad, mode="reflect")

        def sl(a, axis=axis):
            return tuple(slice(a, a + n) if ax == axis else slice(None) for ax in range(3))

        out = w0 * q[sl(r)]
        for j in range(1, r + 1):
            out += w[:, j - 1:j] * (q[sl(r + j)] + q[sl(r - j)])
        img = out
    return img


def _head(R):
    """Head outline (an egg, narrower at the jaw) and the hair outline, as signed distances."""
    u, v = R.u, R.v
    A, B = R.col("head_a"), R.col("head_b")
    vv = v - R.col("head_v0")
    taper = _F(1) - R.col("jaw") * np.clip(vv / B, _F(0), _F(1))
    qa = u / (A * taper)
    qb = vv / B
    f_head = qa * qa + qb * qb - _F(1)
    half_a = _F(0.5) * A
    d_head = f_head * half_a                  # approximate signed distance near the edge
    qh = (vv + _F(3)) / (B + _F(4))
    d_hairout = (qa * qa * _F(0.92) + qh * qh - _F(1)) * half_a
    return f_head, d_head, d_hairout


def _hair_tone(R, tex, noise):
    """Hair intensity: the hair tone with texture and grain."""
    return R.col("hair") + _F(0.05) * R.get(tex) + _F(0.04) * R.get(noise)


def _draw_ears(R, img):
    for sign in (1.0, -1.0):
        has = R.p["ear"] > 0.35
        S = R.subset(has)
        if S is None:
            continue
        W = S.window(sign * (S.p["head_a"] - 1.0), np.full(len(S.p["ear"]), -2.0), 8.0, 14.5)
        eu = _F(sign) * W.u - (W.col("head_a") - _F(1))
        ev = W.v + _F(2)
        d_ear = (eu * eu + ev * ev * _F(0.25) - _F(36)) * _F(1 / 16)
        win = W.get(img)
        _paint(win, _alpha(d_ear, W.px), W.col("skin") * _F(0.85))
        W.put(img, win)


def _eye_frame(R, sd, sign):
    """Outward and downward coordinates around one eye's corner midpoint."""
    mu = _F(sign) * (R.col("eye_sep") + R.col("eye_dx_" + sd))
    mv = R.col("eye_v") + R.col("eye_dy_" + sd)
    return mu, mv, _F(sign) * (R.u - mu), R.v - mv


def _eye_window(R, sd, sign):
    p = R.p
    return R.window(sign * (p["eye_sep"] + p["eye_dx_" + sd]),
                    p["eye_v"] + p["eye_dy_" + sd] + 1.0, 12.5, 11.0)


def _draw_eye(R, img, noise, sd, sign):
    """Socket shadow, almond (pointed at the corners), iris, pupil, highlight, upper lid."""
    W = _eye_window(R, sd, sign)
    win = W.get(img)
    px = W.px
    skin = W.col("skin")
    mu, mv, su, pv = _eye_frame(W, sd, sign)
    g = np.maximum(_F(1) - (su * su * _F(1 / 110) + (pv + _F(2)) ** 2 * _F(1 / 30)), _F(0))
    win *= _F(1) - W.col("socket") * g * g
    if "bags_" + sd in W.p:                   # shadows under the eye (eye bags)
        lo_b = W.col("eye_lo_" + sd) + W.col("bags_drop")
        qb = su / (W.col("eye_hw_" + sd) * _F(1.1))
        band = np.exp(-((pv - lo_b) * _F(1 / 1.8)) ** 2) * np.maximum(_F(1) - qb * qb, _F(0))
        win *= _F(1) - W.col("bags_" + sd) * band
    ct, st = _cos_sin(np.asarray(W.p["eye_tilt_" + sd], np.float64))
    ct = ct.astype(_F)[:, None, None]
    st = st.astype(_F)[:, None, None]
    w = ct * su - st * pv                     # along the eye, outward positive
    z = st * su + ct * pv                     # across, down positive
    hw = W.col("eye_hw_" + sd)
    eu, el = W.col("eye_up_" + sd), W.col("eye_lo_" + sd)
    q = w / hw
    bulge = _F(1) - q * q
    up = -eu * bulge
    lo = el * bulge
    d_up = (up - z) / np.sqrt(_F(1) + (_F(2) * eu * q / hw) ** 2)
    d_lo = (z - lo) / np.sqrt(_F(1) + (_F(2) * el * q / hw) ** 2)
    a_eye = _alpha(np.maximum(d_up, d_lo), px)
    sclera = np.minimum(skin + W.col("sclera"), _F(0.97))
    _paint(win, a_eye, sclera - _F(0.1) * np.clip(-z, _F(0), _F(2)))
    iu = su - _F(sign) * W.col("gaze_u")     # iris centre in outward coordinates
    iv = pv - W.col("gaze_v")
    rr = np.sqrt(iu * iu + iv * iv)
    ir = W.col("iris_r")
    iris = W.col("iris")
    _paint(win, _alpha(rr - ir, px) * a_eye, iris + _F(0.04) * W.get(noise))
    _paint(win, _alpha(rr - _F(0.45) * ir, px) * a_eye, iris * _F(0.3))
    hu_ = iu - _F(sign) * W.col("highlight_u")
    hv_ = iv + _F(0.9)
    a_hi = _alpha(np.sqrt(hu_ * hu_ + hv_ * hv_) - _F(0.7), px) * a_eye
    _paint(win, a_hi * W.col("highlight"), _F(0.95))
    d_lid = np.maximum(np.abs(z - up + _F(0.45)) - _F(0.85), np.abs(w) - hw - _F(0.5))
    lid_tone = np.minimum(_brow_tone(W), skin * _F(0.45))
    _paint(win, _alpha(d_lid, px) * _F(0.85), lid_tone)
    W.put(img, win)


def _brow_tone(R):
    return np.minimum(R.col("skin") - R.col("brow"), R.col("hair") + _F(0.1))


def _draw_brow(R, img, noise, sd, sign):
    """A tapered stroke arching up between the inner and the outer end."""
    p = R.p
    v_in_ = p["brow_v"] + p["brow_raise_" + sd]
    v_out_ = p["brow_v"] + p["brow_out_dv_" + sd] + 0.6 * p["brow_raise_" + sd]
    cu = sign * 0.5 * (p["brow_in_" + sd] + p["brow_out_" + sd])
    W = R.window(cu, 0.5 * (v_in_ + v_out_), 17.5, 9.0)
    r = W.col("brow_raise_" + sd)
    bi, bo = W.col("brow_in_" + sd), W.col("brow_out_" + sd)
    v_in = W.col("brow_v") + r
    v_out = W.col("brow_v") + W.col("brow_out_dv_" + sd) + _F(0.6) * r
    su = _F(sign) * W.u
    L = np.sqrt((bo - bi) ** 2 + (v_out - v_in) ** 2)
    ex, ey = (bo - bi) / L, (v_out - v_in) / L
    wu, wv = su - bi, W.v - v_in
    t = (wu * ex + wv * ey) / L               # 0 at the inner end, 1 at the outer end
    nrm = wv * ex - wu * ey                   # across the chord, down positive
    tc = np.clip(t, _F(0), _F(1))
    arch = W.col("brow_arch_" + sd) * tc * (_F(1) - tc) * (_F(2.2) + _F(1.8) * tc)
    th = W.col("brow_thick") * (_F(1.25) - _F(0.8) * tc * tc)
    d_perp = np.abs(nrm + arch) - th
    d_end = np.maximum(-t, t - _F(1)) * L
    a = _alpha(np.maximum(d_perp, d_end), W.px)
    win = W.get(img)
    _paint(win, a * _F(0.92), _brow_tone(W) + _F(0.03) * W.get(noise))
    W.put(img, win)


def _draw_folds(R, img):
    """Nasolabial folds: on each side a soft dark crease along a slightly bowed line from
    beside the nose's wing down to just outside and below the mouth's corner."""
    if "fold_L" not in R.p:
        return
    cv = _F(0.5) * (np.asarray(R.p["nose_v"]) + np.asarray(R.p["mouth_v"])) + 1.0
    W = R.window(np.zeros_like(cv), cv, 26.0, 13.0)
    win = W.get(img)
    skin = W.col("skin")
    a_u = W.col("nose_w") * _F(0.9) + _F(1.5)       # the upper end, beside the nose's wing
    a_v = W.col("nose_v") - _F(1)
    for sd, sign in (("L", 1.0), ("R", -1.0)):
        ou = _F(sign) * (W.u - W.col("mouth_u"))
        b_u = W.col("mouth_hw_" + sd) + W.col("fold_out")
        b_v = W.col("mouth_v") + _F(3.5)
        du, dv = b_u - a_u, b_v - a_v
        t = np.clip(((ou - a_u) * du + (W.v - a_v) * dv) / (du * du + dv * dv), _F(0), _F(1))
        bow = _F(1.2) * t * (_F(1) - t) * _F(4)        # bowed outwards in the middle
        d = np.hypot(ou - (a_u + t * du + bow), W.v - (a_v + t * dv))
        a = W.col("fold_" + sd) * np.exp(-_F(0.5) * (d / _F(1.3)) ** 2)
        _paint(win, a, skin * _F(0.55))
    W.put(img, win)


def _draw_nose(R, img):
    """Side shading lines, alae, tip highlight, nostrils and the shadow under the tip.

    The keypoint (``nose_u``, ``nose_v``) lies, as Kaggle's ``nose_tip`` does on real faces,
    half-way between the tip (the highlight, above it) and the base of the nose (the
    shadow line under the nostrils), not on the tip itself."""
    W = R.window(R.p["nose_u"], R.p["nose_v"] - 6.5, 8.0, 12.0)
    win = W.get(img)
    px = W.px
    skin = W.col("skin")
    nu = W.u - W.col("nose_u")
    nv = W.v - W.col("nose_v")
    anu = np.abs(nu)
    nw = W.col("nose_w")
    nl = W.col("nose_len")
    t_side = np.clip((nv + nl) / nl, _F(0), _F(1))        # 0 at the top, 1 at the tip
    side_u = _F(2.2) + (nw - _F(1.0)) * t_side * t_side
    d_side = np.maximum(np.abs(anu - side_u) - _F(0.7), np.maximum(-(nv + nl), nv + _F(0.5)))
    _paint(win, _alpha(d_side, px) * (_F(0.1) + _F(0.3) * t_side), skin * _F(0.6))
    ala = np.sqrt(((anu - nw * _F(0.8)) / _F(1.6)) ** 2 + ((nv - _F(0.8)) / _F(2.8)) ** 2)
    _paint(win, _alpha((ala - _F(1)) * _F(1.8), px) * _F(0.35), skin * _F(0.7))
    d_tip = np.sqrt((nu / _F(3.4)) ** 2 + ((nv + _F(2.8)) / _F(2.6)) ** 2) - _F(1)
    _paint(win, _alpha(d_tip * _F(2.5), px) * _F(0.5), np.minimum(skin + _F(0.12), _F(0.98)))
    nos = np.sqrt(((anu - nw * _F(0.55)) / _F(1.4)) ** 2 + ((nv - _F(2.3)) / _F(1.0)) ** 2)
    _paint(win, _alpha(nos - _F(1), px) * _F(0.9), skin * _F(0.25))
    d_under = np.maximum(np.abs(nv - _F(3.6)) - _F(0.5), anu - nw * _F(0.5))
    _paint(win, _alpha(d_under, px) * _F(0.35), skin * _F(0.55))
    W.put(img, win)


def _draw_mouth(R, img):
    """Lips between a cupid's-bow top edge and the bottom edge, pointed at the corners; an
    opening with teeth when the mouth is open; the lip line; a shadow under the lower lip."""
    W = R.window(R.p["mouth_u"], R.p["mouth_v"] + 1.5, 20.0, 10.5)
    win = W.get(img)
    px = W.px
    skin = W.col("skin")
    v = W.v
    w = W.u - W.col("mouth_u")
    right = w < 0
    hwm = np.where(right, W.col("mouth_hw_R"), W.col("mouth_hw_L"))
    sm = np.where(right, W.col("smile_R"), W.col("smile_L"))
    q = w / hwm
    q2 = q * q
    mid = W.col("mouth_v") - sm * q2
    bulge = _F(1) - q2
    P = np.sqrt(np.maximum(bulge, _F(0)))
    open_ = W.col("mouth_open")
    gap = _F(0.5) * open_ * bulge
    aw = np.abs(w)
    beyond = aw - hwm                          # > 0 past the corners
    bow = _F(1) + _F(0.35) * (np.exp(-((aw - _F(3)) * _F(0.5)) ** 2) - _F(np.exp(-2.25)))
    top = mid - gap - W.col("lip_up") * P * bow
    bot = mid + gap + W.col("lip_lo") * P
    d_lips = np.maximum(np.maximum(top - v, v - bot), beyond)
    lip_tone = skin - W.col("lip")
    shade = _F(0.95) + _F(0.05) * np.clip(v - mid, _F(-1), _F(1))   # upper lip darker
    _paint(win, _alpha(d_lips, px * _F(1.3)), lip_tone * shade)
    d_open = np.maximum(np.maximum(mid - gap - v, v - (mid + gap)), beyond)
    a_open = _alpha(d_open, px) * (open_ > 0)
    teeth = _alpha(v - (mid - gap + _F(0.9) * gap), px) * (W.col("teeth") > 0)
    _paint(win, a_open, _F(0.08) + _F(0.65) * teeth * np.minimum(open_ * _F(0.5), _F(1)))
    d_line = np.maximum(np.abs(v - mid) - _F(0.45), beyond - _F(0.3))
    _paint(win, _alpha(d_line, px) * _F(0.9), lip_tone * _F(0.3))
    d_below = np.sqrt((w / _F(7)) ** 2 + ((v - bot - _F(1.8)) / _F(1.6)) ** 2) - _F(1)
    _paint(win, _alpha(d_below * _F(2), px) * _F(0.22), skin * _F(0.6))
    W.put(img, win)


def _draw_beard(R, img, tex, noise):
    """A beard below the lower lip and along the jaw, and a moustache above the upper lip:
    they darken the skin around the mouth and never cover its corners or lip centres."""
    S = R.subset(R.p["beard"] > 0)
    if S is None:
        return
    u, v = S.u, S.v
    _, d_head, _ = _head(S)
    mhw = _F(0.5) * (S.col("mouth_hw_L") + S.col("mouth_hw_R"))
    below = S.col("mouth_v") + _F(0.5) * S.col("mouth_open") + S.col("lip_lo") + _F(1.5)
    # The beard's upper edge: under the lower lip, rising beside the mouth towards the
    # cheeks by ``beard_reach`` of the way up to the nose.
    t = np.clip((np.abs(u) - mhw) * _F(1 / 8), _F(0), _F(1))
    edge = below - S.col("beard_reach") * (below - S.col("nose_v") - _F(3)) * t * t * (
        _F(3) - _F(2) * t)
    d_beard = np.maximum(d_head + _F(1), edge - v)
    top = S.col("mouth_v") - _F(0.5) * S.col("mouth_open") - S.col("lip_up") - _F(1.0)
    d_mous = np.maximum(np.maximum(S.col("nose_v") + _F(3.5) - v, v - top),
                        np.abs(u) - mhw * _F(0.85))
    d_mous = np.where(S.col("moustache") > 0, d_mous, _F(1e3))
    grain = _F(0.75) + _F(0.25) * np.clip(S.get(noise), _F(-1), _F(1))
    a = np.maximum(_alpha(d_beard, S.px * _F(3)), _alpha(d_mous, S.px * _F(1.5)))
    win = S.get(img)
    _paint(win, a * S.col("beard") * grain, S.col("skin") * _F(0.35) + _F(0.05) * S.get(tex))
    S.put(img, win)


def _draw_fringe(R, img, tex, noise):
    """Hair falling over the forehead: hides, never moves, the eyebrows."""
    S = R.subset(R.p["fringe"] > 0)
    if S is None:
        return
    u = S.u
    edge = (S.col("fringe_depth") + S.col("fringe_slope") * u
            + S.col("fringe_amp") * np.cos(np.abs(S.col("fringe_freq") * u
                                                   + S.col("fringe_phase"))))
    _, _, d_hairout = _head(S)
    win = S.get(img)
    _paint(win, _alpha(np.maximum(S.v - edge, d_hairout), S.px) * _F(0.95),
           _hair_tone(S, tex, noise))
    S.put(img, win)


def _draw_glasses(R, img):
    """Two elliptical rims around the eyes, a bridge, the temples and a faint lens tint."""
    S = R.subset(R.p["glasses"] > 0)
    if S is None:
        return
    px = S.px
    gs = S.col("glasses_size")
    rx, ry = _F(11.0) * gs, _F(7.5) * gs
    rims = np.zeros(S.u.shape, _F)
    lens = np.zeros(S.u.shape, _F)
    lim_in, lim_out, mvs = {}, {}, []
    for sd, sign in (("L", 1.0), ("R", -1.0)):
        mu, mv, su, pv = _eye_frame(S, sd, sign)
        e = np.sqrt((su / rx) ** 2 + ((pv + _F(0.5)) / ry) ** 2) - _F(1)
        rims = np.maximum(rims, _alpha(np.abs(e) * ry - _F(0.75), px))
        lens = np.maximum(lens, _alpha(e * ry, px))
        lim_in[sd] = _F(sign) * mu - rx
        lim_out[sd] = _F(sign) * mu + rx
        mvs.append(mv)
    u, v = S.u, S.v
    au = np.abs(u)
    left = u >= 0
    vb = _F(0.5) * (mvs[0] + mvs[1]) - _F(1.5)
    d_bridge = np.maximum(np.abs(v - vb) - _F(0.7),
                          au - np.where(left, lim_in["L"], lim_in["R"]) - _F(0.5))
    d_temple = np.maximum(np.abs(v - vb + _F(1)) - _F(0.6),
                          np.maximum(np.where(left, lim_out["L"], lim_out["R"]) - au,
                                     au - S.col("head_a")))
    frame = np.maximum(rims, np.maximum(_alpha(d_bridge, px), _alpha(d_temple, px)))
    tone = S.col("glasses_tone")
    win = S.get(img)
    _paint(win, lens * _F(0.25), win * _F(0.75) + _F(0.2) * tone)
    _paint(win, frame, tone)
    S.put(img, win)


def _draw_hand(R, img, tex):
    """A hand raised to the chin or cheek: palm and four fingers with a dark outline."""
    S = R.subset(R.p["hand"] > 0)
    if S is None:
        return
    hs = S.col("hand_size")
    du, dv = S.col("hand_dir_u"), S.col("hand_dir_v")
    hx = S.u - S.col("hand_u")
    hy = S.v - S.col("hand_v")
    along = hx * du + hy * dv                 # towards the fingertips
    across = hx * dv - hy * du
    r_pw = _F(10.5) * hs
    d_hand = (np.sqrt((along / (_F(13) * hs)) ** 2 + (across / r_pw) ** 2) - _F(1)) * r_pw
    a0 = along - _F(10) * hs
    for k in (-1.5, -0.5, 0.5, 1.5):
        length = _F(14.0 - 2.5 * abs(k)) * hs
        ac = across - _F(k * 4.6) * hs
        tcl = np.clip(a0 / length, _F(0), _F(1)) * length
        d_f = np.sqrt((a0 - tcl) ** 2 + ac * ac) - _F(2.1) * hs
        d_hand = np.minimum(d_hand, d_f)
    skin = S.col("skin")
    win = S.get(img)
    _paint(win, _alpha(d_hand - _F(0.6), S.px), skin * _F(0.5))
    _paint(win, _alpha(d_hand + _F(0.3), S.px), skin * _F(0.95) + _F(0.04) * S.get(tex))
    S.put(img, win)


def _render_chunk(p) -> np.ndarray:
    """Render one chunk of faces (a dict of parameter arrays) to uint8 images."""
    F = _F
    m = len(p["scale"])
    if "yaw" in p:
        p = dict(p)
        p["pose_s"], p["pose_ou"], p["pose_ov"] = _pose_alignment(p)
    noise, tex_bg, tex_skin = _noise_fields(p)
    R = _Region(p)
    X, Y = R.X, R.Y
    u, v = R.u, R.v
    R.chunk_uv = (u, v)
    px = R.px
    skin = R.col("skin")

    # Background with a gradient and texture.
    img = np.empty((m, IMAGE_SIDE, IMAGE_SIDE), F)
    img[...] = R.col("bg") + R.col("bg_grad_x") * X + R.col("bg_grad_y") * Y
    img += R.col("bg_texture") * tex_bg

    # Long hair behind the head.
    S = R.subset(R.p["hair_long"] > 0)
    if S is not None:
        A, B = S.col("head_a") + F(7), S.col("head_b") + F(6)
        qa = S.u / A
        qb = (S.v - S.col("head_v0") + F(4)) / B
        d_long = np.maximum((qa * qa + qb * qb - F(1)) * (F(0.5) * A),
                            S.v - (F(-10) + S.col("hair_long")))
        win = S.get(img)
        _paint(win, _alpha(d_long, S.px), _hair_tone(S, tex_skin, noise))
        S.put(img, win)

    # Neck, ears, then the face with rim shading and skin texture.
    A = R.col("head_a")
    f_head, d_head, d_hairout = _head(R)
    d_neck = np.maximum(np.abs(u) - F(0.55) * A, F(20) - v)
    _paint(img, _alpha(d_neck, px), skin * F(0.8))
    _draw_ears(R, img)
    r2 = np.clip(f_head + F(1), F(0), F(1))
    face = skin * (F(1) - R.col("shade") * r2 * r2) + R.col("texture") * tex_skin
    _paint(img, _alpha(d_head, px), face)

    # Hair above the hairline.
    d_hair = np.maximum(v - (R.col("hairline") + R.col("hair_curve") * u * u), d_hairout)
    _paint(img, _alpha(d_hair, px), _hair_tone(R, tex_skin, noise))

    # Features, each in its own window.
    for sd, sign in (("L", 1.0), ("R", -1.0)):
        _draw_brow(R, img, noise, sd, sign)
        _draw_eye(R, img, noise, sd, sign)
    _draw_folds(R, img)
    _draw_nose(R, img)
    _draw_mouth(R, img)
    _draw_beard(R, img, tex_skin, noise)

    # The lamp shades the face (hair and background keep their tone).
    if "lamp_u" in p:
        a_head = _alpha(d_head, px)
        img *= F(1) + a_head * (_head_pose.lambert(R.col, u, v) - F(1))

    # Occluders.
    _draw_fringe(R, img, tex_skin, noise)
    _draw_glasses(R, img)
    _draw_hand(R, img, tex_skin)

    # Light, camera contrast, blur, sensor noise.
    img *= F(1) + R.col("light_x") * X + R.col("light_y") * Y
    # The camera's tone curve: a gamma, then contrast and brightness.
    np.clip(img, F(0), F(1), out=img)
    img **= R.col("gamma")
    img = (img - F(0.5)) * R.col("contrast") + (F(0.5) + R.col("brightness"))
    # Sensor grain, then the lens and the resampling of a photo blur it.
    img += R.col("noise") * noise
    img = _blur(img, np.asarray(p["blur"], F))
    img *= F(255)
    np.rint(img, out=img)
    np.clip(img, 0, 255, out=img)
    return img.astype(np.uint8)


def _workers() -> int:
    try:
        n = len(os.sched_getaffinity(0))
    except AttributeError:      # pragma: no cover - not Linux
        n = os.cpu_count() or 1
    return max(1, min(4, n))


def render(params: FaceParams, chunk_size: int = 128, workers: int | None = None
           ) -> np.ndarray:
    """Render faces as uint8 images of shape (n, 96, 96).

    Every face depends only on its own parameters, so the result does not depend on the
    chunking or the number of threads.

    Parameters
    ----------
    params : FaceParams
        The faces.
    chunk_size : int, default 128
        Faces rendered at a time by one thread.
    workers : int, optional
        Threads (numpy releases the GIL in array operations); default: up to 4, as many as
        the process may use.

    Returns
    -------
    numpy.ndarray
        uint8 (n, 96, 96).
    """
    n = len(params)
    out = np.empty((n, IMAGE_SIDE, IMAGE_SIDE), dtype=np.uint8)
    starts = range(0, n, chunk_size)

    def job(start):
        stop = min(n, start + chunk_size)
        out[start:stop] = _render_chunk({k: v[start:stop] for k, v in params.values.items()})

    workers = _workers() if workers is None else max(1, int(workers))
    if workers == 1 or len(starts) <= 1:
        for start in starts:
            job(start)
    else:
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(workers) as pool:
            list(pool.map(job, starts))
    return out


def render_faces(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """``n`` synthetic faces and their keypoints, deterministic in ``seed``.

    Parameters
    ----------
    n : int
        Number of faces.
    seed : int, default 0
        The random seed (as for ``sample_params``).

    Returns
    -------
    images : numpy.ndarray
        uint8 (n, 96, 96).
    keypoints : numpy.ndarray
        float64 (n, 30) in pixels, KEYPOINT_COLUMNS order.

    Examples
    --------
    >>> from facekeypoints import synthetic
    >>> images, kp = synthetic.render_faces(2, seed=0)
    >>> images.shape, images.dtype, kp.shape
    ((2, 96, 96), dtype('uint8'), (2, 30))
    """
    params = sample_params(n, seed)
    return render(params), keypoints(params)


# --------------------------------------------------------------------------------------------
# Kaggle's pattern of missing values
# --------------------------------------------------------------------------------------------

_COL_INDEX = {name: i for i, name in enumerate(KEYPOINT_COLUMNS)}
# The four keypoints Kaggle nearly always has; the other eleven come and go together.
_ALWAYS = ("left_eye_center", "right_eye_center", "nose_tip", "mouth_center_bottom_lip")
_KEYPOINT_NAMES = tuple(c[:-2] for c in KEYPOINT_COLUMNS[0::2])
_SOMETIMES = tuple(k for k in _KEYPOINT_NAMES if k not in _ALWAYS)
# Kaggle counts (out of 7,049 rows): about 2,282 rows are fully annotated, 2,140 complete.
_FULL_FRACTION = 2282 / 7049
_DEFECT_FRACTION = 142 / 2282      # fully annotated rows that still miss some keypoints
# Within those defective rows: chance that each of the eleven keypoints is missing.
_DEFECT_MISS = {k: 0.08 for k in _SOMETIMES}
_DEFECT_MISS.update({"left_eyebrow_outer_end": 0.40, "right_eyebrow_outer_end": 0.32,
                     "mouth_center_top_lip": 0.05})
# Rare misses of the nearly-always keypoints, over all rows.
_RARE_MISS = {"left_eye_center": 10 / 7049, "right_eye_center": 13 / 7049,
              "nose_tip": 0.0, "mouth_center_bottom_lip": 33 / 7049}
# IdLookupTable: fraction of test images asked for all 30 values (the rest: 8 values).
_LOOKUP_FULL_FRACTION = 0.33


def missing_mask(n: int, seed: int = 0) -> np.ndarray:
    """Boolean (n, 30) mask of missing training values with Kaggle's pattern.

    A fixed share of rows (rounded) is fully annotated; of those a fixed share misses a few
    keypoints (eyebrow outer ends most often); the other rows have only the eye centres, the
    nose tip and the bottom lip, each of which is rarely missing too.

    Parameters
    ----------
    n : int
        Number of rows.
    seed : int, default 0
        The random seed.

    Returns
    -------
    numpy.ndarray
        bool (n, 30), True where a value is missing; x and y of a keypoint go together.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _STREAM_VERSION, 7]))
    order = rng.permutation(n)
    n_full = int(round(n * _FULL_FRACTION))
    n_defect = int(round(n_full * _DEFECT_FRACTION))
    miss_kp = np.zeros((n, len(_KEYPOINT_NAMES)), dtype=bool)
    sometimes = [_KEYPOINT_NAMES.index(k) for k in _SOMETIMES]
    sparse_rows = order[n_full:]
    miss_kp[np.ix_(sparse_rows, sometimes)] = True
    defect_rows = order[:n_defect]
    if n_defect:
        probs = np.array([_DEFECT_MISS[k] for k in _SOMETIMES])
        drop = rng.random((n_defect, len(sometimes))) < probs
        none = ~drop.any(1)
        forced = rng.choice(len(sometimes), none.sum(), p=probs / probs.sum())
        drop[np.flatnonzero(none), forced] = True
        miss_kp[np.ix_(defect_rows, sometimes)] = drop
    for k, prob in _RARE_MISS.items():
        j = _KEYPOINT_NAMES.index(k)
        miss_kp[:, j] |= rng.random(n) < prob
    return np.repeat(miss_kp, 2, axis=1)


def lookup_features(n_test: int, seed: int = 0) -> list[tuple[int, str]]:
    """(ImageId, FeatureName) pairs of an IdLookupTable.

    About a third of the images ask for all 30 values, the others for the eye centres, nose
    tip and bottom lip (8 values).

    Parameters
    ----------
    n_test : int
        Number of test images (ImageIds 1..n_test).
    seed : int, default 0
        The random seed.

    Returns
    -------
    list of (int, str)
        The lookup table's rows in order.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed), _STREAM_VERSION, 8]))
    full = np.zeros(n_test, dtype=bool)
    full[rng.permutation(n_test)[: int(round(n_test * _LOOKUP_FULL_FRACTION))]] = True
    few = [c for c in KEYPOINT_COLUMNS if c[:-2] in _ALWAYS]
    rows = []
    for i in range(n_test):
        for name in (KEYPOINT_COLUMNS if full[i] else few):
            rows.append((i + 1, name))
    return rows


# --------------------------------------------------------------------------------------------
# Kaggle CSV files
# --------------------------------------------------------------------------------------------

# Pixel strings as a (256, 4) byte table with lengths including the trailing space.
_PIXEL_BYTES = np.zeros((256, 4), dtype=np.uint8)
_PIXEL_LEN = np.zeros(256, dtype=np.int64)
for _i in range(256):
    _b = str(_i).encode() + b" "
    _PIXEL_BYTES[_i, : len(_b)] = np.frombuffer(_b, dtype=np.uint8)
    _PIXEL_LEN[_i] = len(_b)
del _i, _b


def _image_lines(images: np.ndarray) -> list[bytes]:
    """Each image as Kaggle's space-separated pixel string (bytes), built with table lookups
    instead of per-pixel formatting."""
    flat = images.reshape(len(images), N_PIXELS)
    keep = np.arange(4)[None, None, :] < _PIXEL_LEN[flat][..., None]
    data = _PIXEL_BYTES[flat][keep].tobytes()
    ends = np.cumsum(_PIXEL_LEN[flat].sum(1))
    starts = np.concatenate([[0], ends[:-1]])
    return [data[a:b - 1] for a, b in zip(starts.tolist(), ends.tolist())]


def _format_values(values: np.ndarray) -> list[bytes]:
    """Keypoint rows as comma-joined '%.6f' fields; NaN becomes an empty field."""
    out = []
    for row in values.tolist():
        out.append(",".join("" if x != x else "%.6f" % x for x in row).encode())
    return out


def _write_chunks(path: Path, chunks) -> None:
    """Write byte chunks to ``path`` atomically and durably (a temporary file, then a rename)."""
    atomic_write(path, lambda f: f.writelines(chunks), fsync=True)


def _training_chunks(params: FaceParams, kp: np.ndarray):
    yield (",".join(KEYPOINT_COLUMNS) + ",Image\n").encode()
    for start in range(0, len(params), _WRITE_CHUNK):
        sl = slice(start, start + _WRITE_CHUNK)
        imgs = render(params.take(sl))
        vals = _format_values(kp[sl])
        pix = _image_lines(imgs)
        yield b"".join(a + b"," + b + b"\n" for a, b in zip(vals, pix))


def _test_chunks(params: FaceParams):
    yield b"ImageId,Image\n"
    for start in range(0, len(params), _WRITE_CHUNK):
        imgs = render(params.take(slice(start, start + _WRITE_CHUNK)))
        pix = _image_lines(imgs)
        yield b"".join(b"%d,%s\n" % (start + i + 1, b) for i, b in enumerate(pix))


def write_dataset(directory: str | os.PathLike, seed: int = DEFAULT_SEED,
                  n_train: int = DEFAULT_N_TRAIN, n_test: int = DEFAULT_N_TEST
                  ) -> dict[str, Path]:
    """Write ``training.csv``, ``test.csv`` and ``IdLookupTable.csv`` into ``directory``.

    Each file is written under a temporary name in the same directory and renamed into place,
    so an interrupted run never leaves a partial file under a final name.  The same
    arguments give byte-identical files (with the same numpy on the same kind of CPU; float
    rounding in exp and matrix products may move a few pixels by one level elsewhere).

    Parameters
    ----------
    directory : str or os.PathLike
        Where to write (created if needed).
    seed : int, default DEFAULT_SEED
        The random seed.
    n_train : int, default DEFAULT_N_TRAIN
        Rows of training.csv (7,049, as Kaggle's).
    n_test : int, default DEFAULT_N_TEST
        Rows of test.csv (1,783, as Kaggle's).

    Returns
    -------
    dict of str to pathlib.Path
        The paths under the keys ``'training'``, ``'test'`` and ``'lookup'``.

    Examples
    --------
    >>> from facekeypoints import synthetic
    >>> paths = synthetic.write_dataset("faces", n_train=100, n_test=10)  # doctest: +SKIP
    >>> sorted(paths)  # doctest: +SKIP
    ['lookup', 'test', 'training']
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    train_params = sample_params(n_train, seed=_stream(seed, 0))
    kp = keypoints(train_params)
    kp[missing_mask(n_train, seed)] = np.nan
    paths = {"training": directory / TRAINING_CSV, "test": directory / TEST_CSV,
             "lookup": directory / LOOKUP_CSV}
    _write_chunks(paths["training"], _training_chunks(train_params, kp))
    _write_chunks(paths["test"], _test_chunks(sample_params(n_test, seed=_stream(seed, 1))))
    lookup = [b"RowId,ImageId,FeatureName,Location\n"]
    lookup += [b"%d,%d,%s,\n" % (r + 1, i, f.encode())
               for r, (i, f) in enumerate(lookup_features(n_test, seed))]
    _write_chunks(paths["lookup"], [b"".join(lookup)])
    return paths


def _stream(seed: int, k: int) -> int:
    """Independent face streams for the training and test sets of one seed."""
    return int(np.random.SeedSequence([int(seed), 1000 + k]).generate_state(1, np.uint64)[0]
               >> np.uint64(1))


def training_faces(n: int = DEFAULT_N_TRAIN, seed: int = DEFAULT_SEED
                   ) -> tuple[FaceParams, np.ndarray, np.ndarray]:
    """The faces of a written training.csv, before values are blanked.

    For checks against the generator: ``write_dataset(d, seed, n_train=n)`` writes these
    images and these keypoints, less the missing values.

    Parameters
    ----------
    n : int, default DEFAULT_N_TRAIN
        Rows of the training file.
    seed : int, default DEFAULT_SEED
        The data set's seed.

    Returns
    -------
    params : FaceParams
        The faces' parameters.
    images : numpy.ndarray
        uint8 (n, 96, 96).
    keypoints : numpy.ndarray
        float64 (n, 30), complete, in pixels.
    """
    params = sample_params(n, seed=_stream(seed, 0))
    return params, render(params), keypoints(params)


# --------------------------------------------------------------------------------------------
# The default data set in a per-user cache
# --------------------------------------------------------------------------------------------

def default_data_dir(seed: int = DEFAULT_SEED, n_train: int = DEFAULT_N_TRAIN,
                     n_test: int = DEFAULT_N_TEST) -> Path:
    """Where the default synthetic data set lives.

    In the per-user cache (``facekeypoints.data.cache_dir()``: ``$FACEKEYPOINTS_CACHE`` if
    set, else ``$XDG_CACHE_HOME/facekeypoints`` else ``~/.cache/facekeypoints``), in a
    subfolder named by generator version and seed (and sizes, when not the defaults).

    Parameters
    ----------
    seed : int, default DEFAULT_SEED
        The data set's seed.
    n_train : int, default DEFAULT_N_TRAIN
        Rows of training.csv.
    n_test : int, default DEFAULT_N_TEST
        Rows of test.csv.

    Returns
    -------
    pathlib.Path
        The folder (it may not exist yet).
    """
    name = f"synthetic-v{GENERATOR_VERSION}-seed{int(seed)}"
    if (n_train, n_test) != (DEFAULT_N_TRAIN, DEFAULT_N_TEST):
        name += f"-n{int(n_train)}-{int(n_test)}"
    return cache_dir() / name


@contextlib.contextmanager
def _file_lock(path: Path):
    """An exclusive advisory lock (POSIX); elsewhere the atomic rename alone protects us."""
    try:
        import fcntl
    except ImportError:          # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as f:
        fcntl.flock(f.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f.fileno(), fcntl.LOCK_UN)


def _dataset_paths(directory: Path) -> dict[str, Path]:
    return {"training": directory / TRAINING_CSV, "test": directory / TEST_CSV,
            "lookup": directory / LOOKUP_CSV}


def _is_complete(directory: Path) -> bool:
    return (directory / _MARKER).is_file() and all(
        p.is_file() for p in _dataset_paths(directory).values())


# The marker records each file's size, rows and SHA-256 (taken once, when the set is written)
# and the mtime it had when last hashed. A load compares sizes and mtimes (a few stat calls);
# the file is hashed again only when its mtime moved, or was too recent to be trusted (the
# racy-stat rule: a change within the timestamp granularity could keep the mtime).
_STAT_TRUST_NS = 2_000_000_000
_HASH_CHUNK = 8 << 20


def _digest(path: Path) -> tuple[str, int, bool]:
    """SHA-256 hex digest of the file, its number of data rows (lines less the header) and
    whether it ends with a line end."""
    import hashlib

    h, lines, last = hashlib.sha256(), 0, b"\n"
    with open(path, "rb") as f:
        while chunk := f.read(_HASH_CHUNK):
            h.update(chunk)
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return h.hexdigest(), max(lines - 1, 0), last == b"\n"


def _record(path: Path) -> dict:
    digest, rows, _ = _digest(path)
    st = path.stat()
    return {"size": st.st_size, "rows": rows, "sha256": digest, "mtime_ns": st.st_mtime_ns,
            "hashed_ns": time.time_ns()}


def _contents_problem(directory: Path) -> str | None:
    """None if the set's files are what its marker records, else what differs (one phrase).

    A marker written before records were kept is checked by row counts and complete last
    lines, then given the records (trust on first use).
    """
    import json

    marker = directory / _MARKER
    try:
        meta = json.loads(marker.read_text())
        records = meta.get("contents")
        expected = {TRAINING_CSV: int(meta["n_train"]), TEST_CSV: int(meta["n_test"])}
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return f"its marker {_MARKER} is unreadable"
    changed = not isinstance(records, dict)
    if changed:
        records = {}
    for path in _dataset_paths(directory).values():
        name, rec = path.name, records.get(path.name)
        try:
            st = path.stat()
            if rec is None:           # an older marker: rows and line ends only
                digest, rows, whole = _digest(path)
                if name in expected and (rows != expected[name] or not whole):
                    return (f"{name} has {rows} data rows{'' if whole else ', its last cut'}; "
                            f"its marker records {expected[name]}")
                records[name] = {"size": st.st_size, "rows": rows, "sha256": digest,
                                 "mtime_ns": st.st_mtime_ns, "hashed_ns": time.time_ns()}
                continue
            if st.st_size != rec["size"]:
                rows = _digest(path)[1]
                return (f"{name} has {rows} data rows in {st.st_size} bytes; its marker "
                        f"records {rec['rows']} rows in {rec['size']} bytes")
            if (st.st_mtime_ns == rec["mtime_ns"]
                    and rec["hashed_ns"] - rec["mtime_ns"] > _STAT_TRUST_NS):
                continue
            digest, rows, _ = _digest(path)
            if digest != rec["sha256"]:
                return (f"the content of {name} ({rows} data rows) differs from what its marker "
                        "records (same size, another SHA-256)")
            rec.update(mtime_ns=st.st_mtime_ns, hashed_ns=time.time_ns())
            changed = True
        except (OSError, KeyError, TypeError) as exc:
            return f"{name} cannot be checked ({exc})"
    if changed:                       # best effort: a read-only cache is checked again later
        with contextlib.suppress(OSError):
            write_json(marker, {**meta, "contents": records})
    return None


def ensure_default_dataset(seed: int = DEFAULT_SEED, n_train: int = DEFAULT_N_TRAIN,
                           n_test: int = DEFAULT_N_TEST, verbose: bool = False
                           ) -> dict[str, Path]:
    """Paths of the default synthetic data set, generating it on first use.

    The set is built in a temporary folder next to the cache folder, a marker file is written
    last, and the folder is renamed into place; a lock file serialises concurrent callers,
    so two processes never see or make a half-written set. ``load(path=None)`` reads the
    default-sized set this makes. The marker records each file's size, row count and SHA-256;
    a set whose files no longer match it (cut short, edited) is rebuilt, with a one-line
    notice on stderr. Sizes and modification times are compared on every call; a file is
    hashed again only when its modification time changed.

    Parameters
    ----------
    seed : int, default DEFAULT_SEED
        The data set's seed.
    n_train : int, default DEFAULT_N_TRAIN
        Rows of training.csv.
    n_test : int, default DEFAULT_N_TEST
        Rows of test.csv.
    verbose : bool, default False
        Print a line before and after generating.

    Returns
    -------
    dict of str to pathlib.Path
        The paths under the keys ``'training'``, ``'test'`` and ``'lookup'``.

    Examples
    --------
    >>> from facekeypoints import synthetic
    >>> paths = synthetic.ensure_default_dataset()  # doctest: +SKIP
    >>> paths["training"].name  # doctest: +SKIP
    'training.csv'
    """
    final = default_data_dir(seed, n_train, n_test)
    if _is_complete(final) and _contents_problem(final) is None:
        return _dataset_paths(final)
    try:
        return _build_default_dataset(final, seed, n_train, n_test, verbose)
    except OSError as exc:
        raise cache_write_error(exc, final.parent, "the synthetic faces") from None


def _build_default_dataset(final, seed, n_train, n_test, verbose):
    """``ensure_default_dataset``'s work once the set is found missing or damaged."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with _file_lock(final.parent / (final.name + ".lock")):
        if _is_complete(final):
            problem = _contents_problem(final)
            if problem is None:           # another process rebuilt it meanwhile
                return _dataset_paths(final)
            print(f"facekeypoints: the cached synthetic faces in {final} do not match their "
                  f"marker ({problem}); rebuilding them", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        if verbose:
            print(f"facekeypoints: generating synthetic faces into {final} ...", flush=True)
        # Under the lock no one else is writing: temporary folders left here were
        # abandoned by killed runs.
        for stale in final.parent.glob("." + final.name + ".*.tmp"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = final.parent / f".{final.name}.{os.getpid()}.{os.urandom(4).hex()}.tmp"
        tmp.mkdir()
        try:
            written = write_dataset(tmp, seed=seed, n_train=n_train, n_test=n_test)
            meta = {"generator_version": GENERATOR_VERSION, "seed": int(seed),
                    "n_train": int(n_train), "n_test": int(n_test),
                    "files": [TRAINING_CSV, TEST_CSV, LOOKUP_CSV],
                    "contents": {p.name: _record(p) for p in written.values()}}
            write_json(tmp / _MARKER, meta)
            if final.exists():            # a stale, incomplete folder: replace it
                shutil.rmtree(final)
            os.rename(tmp, final)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        if verbose:
            print(f"facekeypoints: done in {time.perf_counter() - t0:.1f} s", flush=True)
    return _dataset_paths(final)


# --------------------------------------------------------------------------------------------
# Summary
# --------------------------------------------------------------------------------------------

class DatasetSummary(dict):
    """A dict of summary numbers whose ``str`` is a short table (for printing)."""

    def __str__(self) -> str:
        lines = [f"rows: {self['rows']}, complete rows: {self['complete_rows']}",
                 f"{'keypoint':<28}{'present':>8}{'mean':>9}{'std':>7}"]
        for col in self["present"]:
            lines.append(f"{col:<28}{self['present'][col]:>8d}"
                         f"{self['mean'][col]:>9.2f}{self['std'][col]:>7.2f}")
        return "\n".join(lines)


def summarize(data: str | os.PathLike | pd.DataFrame) -> DatasetSummary:
    """Rows, complete rows, and per keypoint column the present count, mean and std.

    Parameters
    ----------
    data : str, os.PathLike or pandas.DataFrame
        A training.csv file, or its DataFrame.

    Returns
    -------
    DatasetSummary
        A dict with ``rows``, ``complete_rows``, and ``present``, ``mean`` and ``std`` (in
        pixels) by keypoint column; printing it shows a table.
    """
    import pandas as pd

    if isinstance(data, pd.DataFrame):
        df = data[[c for c in KEYPOINT_COLUMNS if c in data.columns]]
    else:
        header = pd.read_csv(data, nrows=0).columns
        df = pd.read_csv(data, usecols=[c for c in KEYPOINT_COLUMNS if c in header])
    return DatasetSummary(
        rows=int(len(df)),
        complete_rows=int(df.notna().all(axis=1).sum()),
        present={c: int(df[c].notna().sum()) for c in df.columns},
        mean={c: float(df[c].mean()) for c in df.columns},
        std={c: float(df[c].std()) for c in df.columns},
    )


# --------------------------------------------------------------------------------------------
# The embedded faces as data.load's default
# --------------------------------------------------------------------------------------------

def _default_dataset(test: bool) -> Path:
    """The default set's training (test=False) or test file: what ``load(path=None)`` reads."""
    return ensure_default_dataset()["test" if test else "training"]


register_default_dataset(_default_dataset)

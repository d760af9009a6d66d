"""Turning a synthetic face in depth: yaw and pitch as a warp of the frontal face.

The generator draws every face frontal, in face coordinates ``(u, v)`` (``u`` towards the
subject's left, ``v`` down). This module gives the face a depth ``z(u, v)``: a paraboloid
head whose silhouette is the head outline, plus a nose ridge that rises from the eyes to the
tip and falls off under it. Turning the head by ``yaw`` (about the vertical axis) and
``pitch`` (about the horizontal one), seen from far away, moves each point to

    u' = u cos(yaw)   + z sin(yaw)
    v' = v cos(pitch) + z sin(pitch)

and then re-frames the result the way crops of real faces are made: a least-squares scale
and shift (:func:`alignment`) puts the turned eye centres and mouth corners back on their
frontal positions, so the features stay where the keypoint statistics put them while the
nose swings across the face, the far eye narrows and more of one cheek shows.

Keypoints are moved by the forward map exactly. Images are drawn by the inverse map: the
renderer asks, for each pixel's turned coordinates, which frontal point lands there, solved
by a fixed-point iteration that contracts because the depth's slopes are bounded
(:data:`SLOPE_MAX`) and the angles clipped (:data:`YAW_MAX`, :data:`PITCH_MAX`). Every
expression is symmetric under ``u -> -u, yaw -> -yaw``, so a mirrored face renders the exactly
mirrored image.
"""
from __future__ import annotations

from collections.abc import Callable

import numpy as np

__all__: list[str] = []

#: Largest |yaw| and |pitch| drawn (radians).
YAW_MAX = 0.55
PITCH_MAX = 0.3
#: A bound on |dz/du| + |dz/dv| over the face for parameters in their ranges; the feature
#: windows grow by it (see :func:`window_growth`).
SLOPE_MAX = 2.5
#: How far the most protruding point of the nose lies above its keypoint (face units):
#: Kaggle's ``nose_tip`` sits half-way between the tip and the base of the nose.
NOSE_TIP_ABOVE = 2.8
#: Depth of the eye sockets (face units).
SOCKET_DEPTH = 3.0
#: Damped fixed-point iterations of the inverse map: each moves this fraction of the way to
#: the plain update, which keeps it contracting where the nose's side and underside are
#: steep (the plain update overshoots there).
ITERATIONS = 20
DAMPING = 0.7

#: Depth parameter names the warp reads.
NAMES = ("yaw", "pitch", "head_depth", "nose_depth")


def cos_sin(theta):
    """cos and sin with exact symmetry under theta -> -theta (mirroring stays exact)."""
    a = np.abs(theta)
    return np.cos(a), np.copysign(np.sin(a), theta)


def depth(col: Callable[[str], np.ndarray], u, v):
    """Depth of the frontal face point ``(u, v)`` (towards the viewer, face units).

    ``col(name)`` returns a parameter broadcastable against ``u`` and ``v``.
    """
    dt = np.result_type(u, np.float32)
    one = dt.type(1)
    A, B = col("head_a"), col("head_b")
    qa = u / A
    qb = (v - col("head_v0")) / B
    head = col("head_depth") * A * np.maximum(one - qa * qa - qb * qb, dt.type(0))
    # The nose ridge: rises linearly from the eye line to the tip, falls off below it.
    nu = u - col("nose_u")
    top = col("eye_v")
    tip = col("nose_v") - dt.type(NOSE_TIP_ABOVE)
    rise = np.clip((v - top) / (tip - top), dt.type(0), one)
    below = v - tip
    fall = np.exp(-(np.maximum(below, dt.type(0)) * dt.type(1 / 8.0)) ** 2)
    ridge = np.exp(nu * nu * dt.type(-1 / (2 * 7.0 ** 2)))
    # Eye sockets: a shallow hollow around each eye.
    su = np.abs(u) - col("eye_sep")
    sv = v - col("eye_v")
    socket = np.exp(su * su * dt.type(-1 / (2 * 6.0 ** 2)) + sv * sv * dt.type(-1 / (2 * 4.0 ** 2)))
    return head + col("nose_depth") * ridge * rise * fall - dt.type(SOCKET_DEPTH) * socket


def lambert(col: Callable[[str], np.ndarray], u, v):
    """Diffuse shading of the turned face at frontal points ``(u, v)``, in ``[ambient, 1]``.

    The surface normal comes from the depth's slopes (central differences), turned by the
    face's yaw and pitch; the light direction is ``(lamp_u, lamp_v)`` towards the viewer.
    """
    dt = np.result_type(u, np.float32)
    h = dt.type(0.25)
    zu = (depth(col, u + h, v) - depth(col, u - h, v)) / (2 * h)
    zv = (depth(col, u, v + h) - depth(col, u, v - h)) / (2 * h)
    norm = np.sqrt(zu * zu + zv * zv + dt.type(1))
    nx, ny, nz = -zu / norm, -zv / norm, dt.type(1) / norm
    cy, sy = cos_sin(col("yaw"))
    cp, sp = cos_sin(col("pitch"))
    nx, nz = nx * cy + nz * sy, nz * cy - nx * sy
    ny, nz = ny * cp + nz * sp, nz * cp - ny * sp
    lu, lv = col("lamp_u"), col("lamp_v")
    lz = np.sqrt(np.maximum(dt.type(1) - lu * lu - lv * lv, dt.type(0)))
    lit = np.clip(nx * lu + ny * lv + nz * lz, dt.type(0), dt.type(1))
    ambient = col("ambient")
    return ambient + (dt.type(1) - ambient) * lit


def _turn(col, u, v, z):
    cy, sy = cos_sin(col("yaw"))
    cp, sp = cos_sin(col("pitch"))
    return u * cy + z * sy, v * cp + z * sp


def forward(col: Callable[[str], np.ndarray], u, v, align):
    """Turned coordinates of frontal points ``(u, v)``; ``align`` is ``(s, ou, ov)`` of
    :func:`alignment`: ``x = s * x_turned - ou`` (and the same for ``y``)."""
    x, y = _turn(col, u, v, depth(col, u, v))
    s, ou, ov = align
    return s * x - ou, s * y - ov


def inverse(col: Callable[[str], np.ndarray], x, y, align):
    """Frontal points that :func:`forward` takes to ``(x, y)``."""
    cy, sy = cos_sin(col("yaw"))
    cp, sp = cos_sin(col("pitch"))
    s, ou, ov = align
    x = (x + ou) / s
    y = (y + ov) / s
    u = x / cy
    v = y / cp
    keep = u.dtype.type(1 - DAMPING)
    step = u.dtype.type(DAMPING)
    for _ in range(ITERATIONS):
        z = depth(col, u, v)
        u = keep * u + step * ((x - z * sy) / cy)
        v = keep * v + step * ((y - z * sp) / cp)
    return u, v


def alignment(col: Callable[[str], np.ndarray], eyes, mouth):
    """The crop that puts the turned eye centres and mouth corners back on the frontal ones.

    Crops of real faces are placed by a least-squares fit (scale and shift, no rotation) of
    these four points to their mean positions; this is that fit of the turned points to the
    frontal ones. ``eyes`` and ``mouth`` are ``((u_L, v_L), (u_R, v_R))`` frontal points.
    Returns ``(s, ou, ov)`` for :func:`forward`. Left and right are always summed first, so
    the result is exactly mirror-symmetric.
    """
    frontal = [eyes[0], eyes[1], mouth[0], mouth[1]]
    turned = [_turn(col, u, v, depth(col, u, v)) for u, v in frontal]

    def mean(points, k):
        return ((points[0][k] + points[1][k]) + (points[2][k] + points[3][k])) * 0.25

    fu, fv = mean(frontal, 0), mean(frontal, 1)
    tu, tv = mean(turned, 0), mean(turned, 1)

    def pair_sum(f):
        terms = [f(i) for i in range(4)]
        return (terms[0] + terms[1]) + (terms[2] + terms[3])

    def dot(i):
        return ((turned[i][0] - tu) * (frontal[i][0] - fu)
                + (turned[i][1] - tv) * (frontal[i][1] - fv))

    def norm(i):
        return (turned[i][0] - tu) ** 2 + (turned[i][1] - tv) ** 2

    s = pair_sum(dot) / pair_sum(norm)
    return s, s * tu - fu, s * tv - fv


def window_growth(p) -> tuple[float, float]:
    """How much a feature's box can grow under the turns of faces ``p``: factors ``(gu, gv)``
    such that a frontal box of half sizes ``(hu, hv)`` lands within half sizes
    ``(hu + gu * (hu + hv), hv + gv * (hu + hv))`` of its turned centre."""
    if "yaw" not in p or len(p["yaw"]) == 0:
        return 0.0, 0.0
    sy = float(np.max(np.abs(np.sin(p["yaw"]))))
    sp = float(np.max(np.abs(np.sin(p["pitch"]))))
    return SLOPE_MAX * sy, SLOPE_MAX * sp

"""The face-alignment measures of ``facekeypoints.metrics``: hand computations, and the formulas
of mmpose's ``keypoint_nme`` / ``keypoint_pck_accuracy`` / ``keypoint_auc``
(mmpose/evaluation/functional/keypoint_eval.py), restated here as short numpy expressions."""
import warnings

import numpy as np
import pytest

from facekeypoints import metrics
from facekeypoints.layout import KAGGLE

EYES = ["left_eye_center_x", "left_eye_center_y", "right_eye_center_x", "right_eye_center_y"]


def faces(n=6, seed=0):
    """``n`` faces in pixels, outer eye corners at x = 20 and 80 (60 px apart), and
    predictions off by known amounts."""
    rng = np.random.default_rng(seed)
    y = rng.uniform(20, 76, size=(n, 30))
    y[:, 6], y[:, 7], y[:, 10], y[:, 11] = 20.0, 40.0, 80.0, 40.0
    pred = y + rng.normal(0, 3, size=y.shape)
    return y, pred


def test_nme_by_hand():
    y = np.zeros((2, 30))
    y[:, 6], y[:, 10] = 20.0, 80.0                  # inter-ocular 60 px
    y[:, 0], y[:, 2] = 30.0, 70.0                   # inter-pupil 40 px
    pred = y.copy()
    pred[0, 28:30] += (6.0, 8.0)                    # face 1: one point 10 px off
    pred[1] += 3.0                                  # face 2: every point 3*sqrt(2) px off
    e = metrics.normalized_errors(y, pred, scaled=False)
    assert e.by == "inter-ocular"
    np.testing.assert_allclose(e.per_face(), [10 / 15 / 60, 3 * np.sqrt(2) / 60])
    assert metrics.nme(y, pred, scaled=False) == pytest.approx(
        (10 / 15 / 60 + 3 * np.sqrt(2) / 60) / 2)
    assert metrics.nme(y, pred, by="inter-pupil", scaled=False) == pytest.approx(
        (10 / 15 / 40 + 3 * np.sqrt(2) / 40) / 2)
    assert metrics.nme(y, pred, by="box", scaled=False) == pytest.approx(
        (10 / 15 / 96 + 3 * np.sqrt(2) / 96) / 2)
    assert metrics.nme(y, pred, by="box", box_size=[50, 100], scaled=False) == pytest.approx(
        (10 / 15 / 50 + 3 * np.sqrt(2) / 100) / 2)
    per_kp = e.per_keypoint()
    assert per_kp["mouth_center_bottom_lip"] == pytest.approx((10 / 60 + 3 * np.sqrt(2) / 60) / 2)
    assert per_kp["nose_tip"] == pytest.approx(3 * np.sqrt(2) / 60 / 2)


def test_scaled_and_pixel_inputs_agree():
    y, pred = faces()
    scaled = metrics.nme(KAGGLE.from_pixels(y), KAGGLE.from_pixels(pred))
    assert scaled == pytest.approx(metrics.nme(y, pred, scaled=False))


def test_unlabelled_values_are_left_out_and_faces_without_normaliser_counted():
    y, pred = faces(4)
    y[0, 28:30] = np.nan                            # an unlabelled keypoint: left out
    y[1, 6:8] = np.nan                              # no left outer corner: no normaliser
    e = metrics.normalized_errors(y, pred, scaled=False)
    assert e.faces == 4 and e.faces_without_normalizer == 1 and e.faces_measured == 3
    per_face = e.per_face()
    assert np.isnan(per_face[1])
    d = np.hypot(*(pred - y).reshape(4, 15, 2).transpose(2, 0, 1)) / 60
    assert per_face[0] == pytest.approx(np.mean(d[0, :14]))
    assert e.nme() == pytest.approx(np.mean([per_face[0], per_face[2], per_face[3]]))
    with pytest.warns(UserWarning, match="1 of 4 faces lack the inter-ocular"):
        metrics.nme(y, pred, scaled=False)
    y[:, 6:8] = np.nan
    with pytest.raises(ValueError, match="no face has the inter-ocular"), \
            warnings.catch_warnings():
        warnings.simplefilter("ignore")
        metrics.nme(y, pred, scaled=False)


def test_failure_rate_ced_and_auc_by_hand():
    y = np.zeros((4, 30))
    y[:, 6], y[:, 10] = 0.0, 100.0                  # inter-ocular 100 px
    pred = y.copy()
    for i, err in enumerate((1.5, 4.5, 8.5, 20.0)):  # NMEs 0.015, 0.045, 0.085, 0.20
        pred[i, 0::2] += err
    assert metrics.failure_rate(y, pred, 0.08, scaled=False) == 0.5
    assert metrics.failure_rate(y, pred, 0.1, scaled=False) == 0.25
    grid, curve = metrics.ced(y, pred, max_error=0.1, steps=11, scaled=False)
    np.testing.assert_allclose(grid, np.linspace(0, 0.1, 11))
    np.testing.assert_allclose(curve, [0, 0, .25, .25, .25, .5, .5, .5, .5, .75, .75])
    # area under the step curve up to 0.1, over 0.1: (0.085 + 0.055 + 0.015) / 4 / 0.1
    assert metrics.auc(y, pred, 0.1, scaled=False) == pytest.approx(0.3875)
    assert metrics.auc(y, pred, 0.08, scaled=False) == pytest.approx((0.065 + 0.035) / 4 / 0.08)
    # the grid sum of other implementations (step 1e-4) agrees
    grid, curve = metrics.ced(y, pred, max_error=0.1, steps=1001, scaled=False)
    assert np.trapezoid(curve, grid) / 0.1 == pytest.approx(0.3875, abs=1e-3)


def test_pck_by_hand():
    y = np.zeros((2, 30))
    pred = y.copy()
    pred[0, 0:2] = (6.0, 8.0)                       # 10 px: outside 0.1 * 96
    pred[1, 0:2] = (3.0, 4.0)                       # 5 px: inside
    e = metrics.normalized_errors(y, pred, by="box", scaled=False)
    assert e.pck_per_keypoint(0.1)["left_eye_center"] == 0.5
    assert metrics.pck(y, pred, 0.1, by="box", scaled=False) == pytest.approx(14.5 / 15)


def test_subset_layouts_and_auto_normaliser():
    y, pred = faces(3)
    eyes = KAGGLE.subset(EYES)
    e = metrics.normalized_errors(y[:, :4], pred[:, :4], scaled=False, layout=eyes)
    assert e.by == "inter-pupil" and e.names == ("left_eye_center", "right_eye_center")
    same = metrics.normalized_errors(y[:, :4], pred[:, :4], scaled=False, layout=EYES)
    np.testing.assert_allclose(same.per_face(), e.per_face())
    nose = KAGGLE.subset(["nose_tip_x", "nose_tip_y"])
    assert metrics.normalized_errors(y[:, 20:22], pred[:, 20:22], scaled=False,
                                     layout=nose).by == "box"
    with pytest.raises(ValueError, match="needs left_eye_outer_corner"):
        metrics.nme(y[:, :4], pred[:, :4], by="inter-ocular", scaled=False, layout=eyes)
    with pytest.raises(ValueError, match="layout=KAGGLE.subset"):
        metrics.nme(y[:, :4], pred[:, :4], scaled=False)
    with pytest.raises(ValueError, match="unknown normaliser"):
        metrics.nme(y, pred, by="face")


# -- mmpose's formulas, restated ------------------------------------------------------------

def _mmpose_distances(pred, gt, mask, norm):
    """(K, N) normalised distances, -1 where masked or where the normaliser is 0."""
    mask = mask & ~(norm == 0).any(axis=1)[:, None]
    norm = np.where(norm <= 0, 1e6, norm)
    d = np.linalg.norm((pred - gt) / norm[:, None, :], axis=-1)
    return np.where(mask, d, -1.0).T


def _mmpose_nme(pred, gt, mask, norm):
    d = _mmpose_distances(pred, gt, mask, norm)
    valid = d[d != -1]
    return valid.sum() / max(1, len(valid))


def _mmpose_pck(pred, gt, mask, thr, norm):
    d = _mmpose_distances(pred, gt, mask, norm)
    accs = [(row[row != -1] < thr).mean() if (row != -1).any() else -1 for row in d]
    accs = np.array([a for a in accs if a >= 0])
    return accs.mean() if len(accs) else 0.0


def _as_mmpose(y):
    return y.reshape(len(y), 15, 2)


def test_nme_matches_mmpose_keypoint_nme_with_inter_ocular_normalisation():
    y, pred = faces(8, seed=3)
    gt, pr = _as_mmpose(y), _as_mmpose(pred)
    outer = (KAGGLE.names.index("left_eye_outer_corner"),
             KAGGLE.names.index("right_eye_outer_corner"))
    interocular = np.linalg.norm(gt[:, outer[0]] - gt[:, outer[1]], axis=1, keepdims=True)
    norm = np.tile(interocular, (1, 2))
    mask = np.ones((8, 15), dtype=bool)
    reference = _mmpose_nme(pr, gt, mask, norm)
    assert metrics.nme(y, pred, scaled=False) == pytest.approx(reference)
    # with unlabelled points mmpose pools every point: average="point"
    y[0, 20:] = np.nan
    mask[0, 10:] = False
    gt = _as_mmpose(np.nan_to_num(y))
    reference = _mmpose_nme(pr, gt, mask, norm)
    assert metrics.nme(y, pred, scaled=False, average="point") == pytest.approx(reference)


def test_pck_and_auc_match_mmpose_with_box_normalisation():
    y, pred = faces(8, seed=4)
    pred += np.random.default_rng(5).normal(0, 6, size=pred.shape)
    gt, pr = _as_mmpose(y), _as_mmpose(pred)
    box = np.random.default_rng(6).uniform(60, 120, size=8)
    mask = np.ones((8, 15), dtype=bool)
    mask[2, 3] = False
    y_true = y.copy()
    y_true[2, 6:8] = np.nan                         # the keypoint mmpose's mask hides
    for thr in (0.05, 0.1, 0.2):
        reference = _mmpose_pck(pr, gt, mask, thr, np.tile(box[:, None], (1, 2)))
        ours = metrics.pck(y_true, pred, thr, by="box", box_size=box, scaled=False)
        assert ours == pytest.approx(reference)
    # mmpose's keypoint_auc: mean PCK over thresholds i / 20 of a 30 px normaliser
    reference = np.mean([_mmpose_pck(pr, gt, mask, i / 20, np.full((8, 2), 30.0))
                         for i in range(20)])
    e = metrics.normalized_errors(y_true, pred, by="box", box_size=30.0, scaled=False)
    assert np.mean([e.pck(i / 20) for i in range(20)]) == pytest.approx(reference)


def test_nme_scorer_in_cross_validation():
    from sklearn.base import BaseEstimator
    from sklearn.model_selection import cross_val_score

    class Mean(BaseEstimator):
        def fit(self, X, y):
            self.mean_ = np.nanmean(y, axis=0)
            return self

        def predict(self, X):
            return np.tile(self.mean_, (len(X), 1))

    y, _ = faces(12)
    y = KAGGLE.from_pixels(y)
    X = np.zeros((12, 4))
    scores = cross_val_score(Mean(), X, y, cv=3, scoring=metrics.neg_nme_scorer)
    assert len(scores) == 3 and (scores < 0).all()
    scorer = metrics.make_nme_scorer(by="box")
    fitted = Mean().fit(X, y)
    assert scorer(fitted, X, y) == pytest.approx(
        -metrics.nme(y, fitted.predict(X), by="box"))

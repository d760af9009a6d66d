"""Geometric augmentation: exact keypoints, the frame rule, seeding, the flip, the net."""
import copy
import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone

import facekeypoints as fk
from facekeypoints import synthetic
from facekeypoints.augment import AffineBatchIterator, affine_transform
from facekeypoints.iterators import flip_permutation
from tests.conftest import tiny_data, tiny_net

SIDE = 96
CENTRES = torch.arange(SIDE, dtype=torch.float64) + 0.5      # pixel i's centre is at i + 0.5


def _dots(n, seed, sigma=1.6, reach=0.4):
    """Images of one Gaussian dot each, at random sub-pixel keypoints (scaled units)."""
    g = torch.Generator().manual_seed(seed)
    kp = (torch.rand(n, 2, generator=g, dtype=torch.float64) * 2 - 1) * reach
    px = kp * 48 + 48
    gx = torch.exp(-(CENTRES[None, :] - px[:, :1]) ** 2 / (2 * sigma ** 2))     # (n, 96)
    gy = torch.exp(-(CENTRES[None, :] - px[:, 1:]) ** 2 / (2 * sigma ** 2))
    images = (gy[:, :, None] * gx[:, None, :])[:, None].float()                  # (n,1,96,96)
    return images, kp.float()


def _centroids(images):
    """Intensity centroids in scaled units, with the pixel-centre convention."""
    img = images[:, 0].double()
    mass = img.sum(dim=(1, 2))
    x = (img.sum(dim=1) * CENTRES).sum(dim=1) / mass
    y = (img.sum(dim=2) * CENTRES).sum(dim=1) / mass
    return torch.stack([(x - 48) / 48, (y - 48) / 48], dim=1)


@pytest.mark.parametrize("settings", [
    dict(rotate=30, scale=0, shift=0, flip=False),
    dict(rotate=0, scale=0.2, shift=0, flip=False),
    dict(rotate=0, scale=0, shift=7.5, flip=False),
    dict(rotate=0, scale=0, shift=0, flip=True),
    dict(rotate=25, scale=0.15, shift=6, flip=True),
], ids=["rotation", "scale", "shift", "flip", "combined"])
def test_a_rendered_dot_lands_on_its_transformed_keypoint(settings):
    X, y = _dots(64, seed=1)
    # a single keypoint: the flip swaps no columns, it only mirrors x
    it = AffineBatchIterator(batch_size=64, flip_indices=[], random_state=5, **settings)
    (Xb, yb), = list(it(X, y))
    assert torch.isfinite(yb).all()
    moved = (yb - y).abs().amax(dim=1) * 48
    assert (moved > 0.5).float().mean() > 0.4           # most dots really did move
    error_px = (_centroids(Xb) - yb.double()).abs() * 48
    assert error_px.max() < 0.1, f"worst dot is {error_px.max():.3f} px off its keypoint"


@pytest.mark.parametrize("quarter_turns", [1, 2, 3])
def test_quarter_turns_of_a_synthetic_face_match_rot90_and_the_pixel_centre_rule(quarter_turns):
    """A turn by 90 degrees maps pixel centres onto pixel centres, so with pixel i's centre at
    i + 0.5 (synthetic.py's convention, align_corners=False) the result is np.rot90 exactly."""
    images, kp = synthetic.render_faces(3, seed=2)
    X = torch.as_tensor(images[:, None] / 255.0, dtype=torch.float32)
    y = torch.as_tensor((kp - 48) / 48, dtype=torch.float32)
    n = len(X)
    Xb, yb = affine_transform(X, y, torch.full((n,), 90.0 * quarter_turns), torch.ones(n),
                              torch.zeros(n, 2))
    expected = np.rot90(images / 255.0, k=quarter_turns, axes=(1, 2))[:, None]
    np.testing.assert_allclose(Xb.numpy(), expected, atol=1e-4)
    # rot90 sends pixel (row r, column c) to (side - 1 - c, r): x' = y, y' = side - x.
    px = kp.reshape(n, 15, 2)
    for _ in range(quarter_turns):
        px = np.stack([px[..., 1], SIDE - px[..., 0]], axis=-1)
    inside = (np.abs(px - 48) <= 48).all(axis=-1)
    got = yb.numpy().reshape(n, 15, 2)
    np.testing.assert_allclose(got[inside], (px[inside] - 48) / 48, atol=1e-5)


def test_keypoints_leaving_the_frame_become_nan_and_nan_stays_nan():
    n = 6
    X = torch.rand(n, 1, SIDE, SIDE)
    y = torch.tensor([[0.95, 0.0, 0.0, 0.95, 0.1, -0.2, float("nan"), float("nan")]]).repeat(n, 1)
    shift = torch.tensor([[3.0, 0.0], [0.0, 3.0], [0.0, 0.0], [0.0, 0.0], [-3.0, 0.0],
                          [0.0, -3.0]])
    scale = torch.tensor([1.0, 1.0, 1.2, 0.9, 1.0, 1.0])
    _, yb = affine_transform(X, y, torch.zeros(n), scale, shift)
    pts = yb.reshape(n, 4, 2)
    gone = torch.isnan(pts)
    assert (gone[..., 0] == gone[..., 1]).all()           # x and y go together
    first, second = gone[:, 0, 0], gone[:, 1, 0]
    # right by 3 px pushes x=0.95 (pixel 93.6) out; down pushes y=0.95 out; zoom both
    assert first.tolist() == [True, False, True, False, False, False]
    assert second.tolist() == [False, True, True, False, False, False]
    assert not gone[:, 2].any()                           # well inside: finite, moved
    assert gone[:, 3].all()                               # unlabelled stays unlabelled
    torch.testing.assert_close(pts[4, 2], torch.tensor([0.1 - 3 / 48, -0.2]))


def test_the_iterator_drops_out_of_frame_keypoints_and_keeps_the_rest_exact():
    X, y = _dots(32, seed=3, reach=0.9)
    y = torch.cat([y, y * 0.2], dim=1)                    # a second keypoint near the centre
    (Xb, yb), = list(AffineBatchIterator(32, rotate=20, scale=0.2, shift=8, flip=False,
                                         random_state=0)(X, y))
    far, near = yb[:, :2], yb[:, 2:]
    assert torch.isfinite(near).all()
    lost = torch.isnan(far).all(dim=1)
    assert lost.any() and (lost == torch.isnan(far).any(dim=1)).all()
    assert (far[~lost].abs() <= 1).all()


def test_same_seed_same_batches_different_seed_different_batches():
    X, y = _dots(20, seed=4)
    y = y.repeat(1, 15)

    def run(seed):
        it = AffineBatchIterator(8, shuffle=True, random_state=seed)
        return [torch.cat([Xb.flatten(1), yb], dim=1) for Xb, yb in it(X, y)]

    a, b, c = run(0), run(0), run(1)
    assert len(a) == 3 and all(torch.equal(p, q) for p, q in zip(a, b))
    assert not any(torch.equal(p, q) for p, q in zip(a, c))
    # a passed generator wins over random_state: the net's runs repeat and resume exactly
    g1, g2 = torch.Generator().manual_seed(9), torch.Generator().manual_seed(9)
    it = AffineBatchIterator(20, random_state=0)
    assert torch.equal(next(iter(it(X, y, generator=g1)))[1],
                       next(iter(it(X, y, generator=g2)))[1])


def test_flip_only_is_exactly_flip_batch_iterator():
    X, y = tiny_data(n=16)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    ours = list(AffineBatchIterator(16, rotate=0, scale=0, shift=0, random_state=3)(X, y))
    theirs = list(fk.FlipBatchIterator(16, random_state=3)(X, y))
    assert torch.equal(ours[0][0], theirs[0][0]) and torch.equal(ours[0][1], theirs[0][1])
    flipped = (ours[0][1] != y).any(dim=1)
    assert int(flipped.sum()) == 8
    expected = (y * torch.tensor([-1.0, 1.0]).repeat(15))[:, flip_permutation(30, fk.FLIP_INDICES)]
    assert torch.equal(ours[0][1][flipped], expected[flipped])   # columns swapped, x negated


def test_identity_settings_return_the_batch_unchanged():
    X, y = tiny_data(n=10)
    X, y = torch.as_tensor(X), torch.as_tensor(y)
    it = AffineBatchIterator(4, rotate=0, scale=0, shift=0, flip=False)
    batches = list(it(X, y))
    assert torch.equal(torch.cat([b[0] for b in batches]), X)
    assert torch.equal(torch.cat([b[1] for b in batches]), y)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16, torch.float64])
def test_shapes_and_dtypes_are_kept_also_for_flat_rows_and_without_targets(dtype):
    X = torch.rand(5, 1, SIDE, SIDE).to(dtype)
    y = (torch.rand(5, 30) * 0.5).to(dtype)
    it = AffineBatchIterator(5, random_state=0)
    (Xb, yb), = list(it(X, y))
    assert Xb.shape == X.shape and Xb.dtype == dtype and yb.shape == y.shape and yb.dtype == dtype
    (Xf, yf), = list(it(X.reshape(5, -1), None))
    assert Xf.shape == (5, SIDE * SIDE) and Xf.dtype == dtype and yf is None
    multi = torch.rand(5, 3, 32, 48).to(dtype)          # channels, and width != height
    (Xm, _), = list(AffineBatchIterator(5, flip=False, random_state=0)(multi, None))
    assert Xm.shape == multi.shape and Xm.dtype == dtype
    assert torch.equal(X, X.clone())                     # nothing changed in place


def test_non_square_images_keep_keypoints_exact():
    """Rotation is in pixels, not in the stretched normalized square."""
    X = torch.zeros(1, 1, 40, 80)
    y = torch.tensor([[0.5, 0.0]])                       # 20 px right of the centre
    _, yb = affine_transform(X, y, torch.tensor([90.0]), torch.ones(1), torch.zeros(1, 2))
    torch.testing.assert_close(yb, torch.tensor([[0.0, -1.0]]), atol=1e-6, rtol=0)  # 20 px up


@pytest.mark.parametrize("kwargs,match", [
    (dict(rotate=-5), "rotate is a limit on both sides"),
    (dict(rotate=200), "rotate must be at most 180"),
    (dict(scale=1.0), "scale must be below 1"),
    (dict(scale=-0.1), "scale is a limit"),
    (dict(shift=float("inf")), "shift must be a finite number"),
    (dict(shift="5"), "shift must be a finite number"),
    (dict(flip="yes"), "flip must be True or False"),
    (dict(padding_mode="constant"), "padding_mode must be one of"),
    (dict(batch_size=0), "batch_size"),
])
def test_bad_settings_are_refused_with_the_fix(kwargs, match):
    with pytest.raises(ValueError, match=match):
        AffineBatchIterator(**kwargs)


def test_bad_batches_are_refused():
    it = AffineBatchIterator(4, random_state=0, flip=False)
    with pytest.raises(ValueError, match="not a square image"):
        list(it(torch.zeros(4, 10), None))
    with pytest.raises(ValueError, match=r"\(n, 2k\)"):
        list(it(torch.zeros(4, 1, 8, 8), torch.zeros(4, 3)))
    changed = AffineBatchIterator(4)
    changed.scale = 2.0                                   # checked again when bound
    with pytest.raises(ValueError, match="scale must be below 1"):
        changed(torch.zeros(4, 1, 8, 8))


def test_repr_pickle_deepcopy_and_clone_keep_the_settings():
    it = AffineBatchIterator(32, rotate=7.5, scale=0.05, shift=3, flip=False,
                             padding_mode="zeros", random_state=4)
    text = "AffineBatchIterator(batch_size=32, rotate=7.5, scale=0.05, shift=3, flip=False, " \
           "padding_mode='zeros', random_state=4)"
    assert repr(it) == text
    bound = it(torch.zeros(4, 1, 8, 8))
    for copied in (pickle.loads(pickle.dumps(bound, -1)), copy.deepcopy(bound)):
        assert repr(copied) == text and not hasattr(copied, "X")
    net = tiny_net(batch_iterator_train=it)
    cloned = clone(net).get_params()["batch_iterator_train"]
    assert cloned is not it and repr(cloned) == text
    assert fk.AffineBatchIterator is AffineBatchIterator


def _faces(n):
    images, kp = synthetic.render_faces(n, seed=0)
    return (images[:, None] / np.float32(255)).astype(np.float32), \
        ((kp - 48) / 48).astype(np.float32)


def test_net4_trains_with_it_and_validation_and_prediction_are_not_augmented():
    rows = []

    class Counting(AffineBatchIterator):
        tensor_transform = True

        def transform(self, Xb, yb):
            rows.append(len(Xb))
            return super().transform(Xb, yb)

    X, y = _faces(64)
    net = fk.presets.net4(max_epochs=1, verbose=0, random_state=0,
                          batch_iterator_train=Counting(batch_size=32, rotate=12, scale=0.08,
                                                        shift=5))
    net.fit(X, y)
    n_valid = net.validation_size(64)
    assert sum(rows) == 64 - n_valid                      # training rows only, once each
    assert np.isfinite(net.train_history_[-1]["train_loss"])
    module = net.module_.eval()
    with torch.no_grad():
        direct = module(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(net.predict(X), direct, rtol=1e-4, atol=1e-5)
    mse = float(((direct[:n_valid] - y[:n_valid]) ** 2).mean())
    assert net.train_history_[-1]["valid_loss"] == pytest.approx(mse, rel=1e-4)
    assert sum(rows) == 64 - n_valid                      # predict did not augment either


def test_a_seeded_net_repeats_and_resumes_exactly(tmp_path):
    from facekeypoints.checkpoint import Checkpoint

    X, y = tiny_data()
    y = y * 0.5                     # no keypoint leaves the frame: the plain MSE stays finite
    it = AffineBatchIterator(16, rotate=20, scale=0.1, shift=2, flip=False)

    def net(**kw):
        return tiny_net(batch_iterator_train=it, eval_size=None, **kw)

    straight = net(max_epochs=2).fit(X, y).predict(X)
    assert np.array_equal(straight, net(max_epochs=2).fit(X, y).predict(X))
    path = tmp_path / "checkpoint.pt"
    net(max_epochs=1, callbacks=[Checkpoint(path)]).fit(X, y)
    resumed = net(max_epochs=2).fit(X, y, resume=path).predict(X)
    assert np.array_equal(straight, resumed)
    unseeded = net(max_epochs=2, random_state=1).fit(X, y).predict(X)
    assert not np.array_equal(straight, unseeded)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_on_cuda_the_batch_stays_on_the_device_and_dots_stay_exact(dtype):
    X, y = _dots(64, seed=6)
    X, y = X.cuda(), y.cuda()
    it = AffineBatchIterator(64, rotate=25, scale=0.15, shift=6, flip_indices=[],
                             random_state=0)
    (Xb, yb), = list(it(X.to(dtype), y))
    assert Xb.device.type == "cuda" and Xb.dtype == dtype and yb.device.type == "cuda"
    if dtype == torch.float32:
        error_px = (_centroids(Xb.cpu()) - yb.cpu().double()).abs() * 48
        assert error_px.max() < 0.1

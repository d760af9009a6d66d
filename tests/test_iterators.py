"""Batch iterators: slicing, the flip rule, no mutation, seeding, old numpy subclasses."""
import numpy as np
import pytest
import torch

import facekeypoints as fk
from facekeypoints.iterators import flip_permutation
from tests.conftest import tiny_data, tiny_net


def _batches(iterator, X, y):
    return list(iterator(torch.as_tensor(X), torch.as_tensor(y)))


def test_batch_iterator_slices_in_order():
    X = np.arange(10, dtype=np.float32).reshape(10, 1)
    y = X * 2
    batches = _batches(fk.BatchIterator(4), X, y)
    assert [len(b[0]) for b in batches] == [4, 4, 2]
    np.testing.assert_array_equal(torch.cat([b[0] for b in batches]).numpy(), X)


def test_flip_mirrors_exactly_half_and_applies_the_keypoint_rule():
    rng = np.random.default_rng(1)
    X = rng.random((8, 1, 96, 96), dtype=np.float32)
    y = rng.uniform(-1, 1, (8, 30)).astype(np.float32)
    Xc, yc = X.copy(), y.copy()
    (Xb, yb), = _batches(fk.FlipBatchIterator(8, random_state=0), X, y)
    Xb, yb = Xb.numpy(), yb.numpy()
    flipped = [i for i in range(8) if not np.array_equal(Xb[i], X[i])]
    assert len(flipped) == 4
    perm = flip_permutation(30, fk.FLIP_INDICES)
    for i in range(8):
        if i in flipped:
            np.testing.assert_array_equal(Xb[i], X[i, :, :, ::-1])
            expected = y[i].copy()
            expected[0::2] *= -1
            np.testing.assert_array_equal(yb[i], expected[perm])
            # e.g. the new left eye centre x is minus the old right eye centre x
            assert yb[i, 0] == -y[i, 2] and yb[i, 1] == y[i, 3]
        else:
            np.testing.assert_array_equal(yb[i], y[i])
    np.testing.assert_array_equal(X, Xc)  # the caller's arrays are untouched
    np.testing.assert_array_equal(y, yc)


def test_flipping_twice_is_the_identity_on_targets():
    perm = flip_permutation(30, fk.FLIP_INDICES)
    y = np.arange(30, dtype=np.float32)
    once = (y * np.where(np.arange(30) % 2 == 0, -1, 1))[perm]
    twice = (once * np.where(np.arange(30) % 2 == 0, -1, 1))[perm]
    np.testing.assert_array_equal(twice, y)


def test_flip_is_seeded():
    X, y = tiny_data(n=16)
    a = _batches(fk.FlipBatchIterator(16, random_state=3), X, y)[0][1]
    b = _batches(fk.FlipBatchIterator(16, random_state=3), X, y)[0][1]
    c = _batches(fk.FlipBatchIterator(16, random_state=4), X, y)[0][1]
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_flip_on_flat_rows():
    X = np.arange(2 * 16, dtype=np.float32).reshape(2, 16)
    y = np.zeros((2, 30), dtype=np.float32)
    (Xb, _), = _batches(fk.FlipBatchIterator(2, random_state=0), X, y)
    changed = [i for i in range(2) if not np.array_equal(Xb[i].numpy(), X[i])]
    assert len(changed) == 1
    i = changed[0]
    np.testing.assert_array_equal(Xb[i].numpy(), X[i].reshape(4, 4)[:, ::-1].ravel())


def test_flip_never_applies_to_validation_or_prediction():
    X, y = tiny_data()
    net = tiny_net(batch_iterator_train=fk.FlipBatchIterator(16), max_epochs=1).fit(X, y)
    # prediction on the same rows twice is deterministic and equals an unflipped forward pass
    module = net.module_.eval()
    with torch.no_grad():
        direct = module(torch.as_tensor(X)).numpy()
    np.testing.assert_allclose(net.predict(X), direct, rtol=1e-5, atol=1e-6)
    mse = float(((direct[:8] - y[:8]) ** 2).mean())
    assert net.train_history_[-1]["valid_loss"] == pytest.approx(mse, rel=1e-5)


def test_old_numpy_flip_iterator_subclass_still_works():
    """The tutorial's own FlipBatchIterator, written for numpy batches."""
    class FlipBatchIterator(fk.BatchIterator):
        flip_indices = [(0, 2), (1, 3), (4, 8), (5, 9), (6, 10), (7, 11), (12, 16), (13, 17),
                        (14, 18), (15, 19), (22, 24), (23, 25)]

        def transform(self, Xb, yb):
            Xb, yb = super(FlipBatchIterator, self).transform(Xb, yb)
            bs = Xb.shape[0]
            indices = np.random.choice(bs, bs // 2, replace=False)
            Xb[indices] = Xb[indices, :, :, ::-1]
            if yb is not None:
                yb[indices, ::2] = yb[indices, ::2] * -1
                for a, b in self.flip_indices:
                    yb[indices, a], yb[indices, b] = (yb[indices, b], yb[indices, a])
            return Xb, yb

    X, y = tiny_data()
    Xc = X.copy()
    net = tiny_net(batch_iterator_train=FlipBatchIterator(16), max_epochs=2).fit(X, y)
    assert len(net.train_history_) == 2
    np.testing.assert_array_equal(X, Xc)


def test_bad_batch_size_and_bad_flip_pairs():
    with pytest.raises(ValueError, match="batch_size"):
        fk.BatchIterator(0)
    with pytest.raises(ValueError, match="outside"):
        flip_permutation(4, [(0, 5)])


def test_unbound_iterator_is_truthy_and_len_says_why():
    it = fk.FlipBatchIterator(batch_size=4)
    assert bool(it) and (it or None) is it
    with pytest.raises(TypeError, match=r"no data yet.*it\(X, y\)"):
        len(it)

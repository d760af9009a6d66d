"""Shared fixtures: small deterministic data and nets, and an isolated per-user cache."""
import numpy as np
import pytest

import facekeypoints as fk
from facekeypoints.layers import Conv2DLayer, DenseLayer, InputLayer, MaxPool2DLayer


@pytest.fixture(autouse=True)
def isolated_cache(tmp_path_factory, monkeypatch):
    """Never touch the user's cache directory from tests."""
    monkeypatch.setenv("FACEKEYPOINTS_CACHE", str(tmp_path_factory.mktemp("cache")))


#: Rows of the stand-in for the default data set (Kaggle's pattern of gaps leaves about 30%
#: of them complete: enough for every test that reads a few hundred default faces).
DEFAULT_DATA_ROWS = (800, 40)


@pytest.fixture(scope="session")
def _small_default_dataset(tmp_path_factory):
    """A smaller set drawn as the default one is (same generator and seed), written once."""
    n_train, n_test = DEFAULT_DATA_ROWS
    return fk.synthetic.write_dataset(tmp_path_factory.mktemp("default-data"),
                                      n_train=n_train, n_test=n_test)


@pytest.fixture
def default_data(_small_default_dataset, monkeypatch):
    """``load()``/``load2d()`` read a smaller stand-in for the default embedded set.

    For tests that read only some of the default faces: generating all 8,832 for each of
    them took most of the suite's time. Tests of generating and caching the default set
    itself must not use this.
    """
    monkeypatch.setattr(fk.synthetic, "ensure_default_dataset",
                        lambda *args, **kwargs: dict(_small_default_dataset))
    return _small_default_dataset


def tiny_data(n=40, side=16, k=30, seed=0):
    """Images in [0, 1] and targets that depend on them, so a net can learn something."""
    rng = np.random.default_rng(seed)
    X = rng.random((n, 1, side, side), dtype=np.float32)
    W = rng.normal(size=(side * side, k)).astype(np.float32) / side
    y = np.tanh(X.reshape(n, -1) @ W - (X.reshape(n, -1) @ W).mean(0)).astype(np.float32)
    return X, y


def tiny_net(**overrides):
    """A small conv net with the recipe's layer vocabulary, on 16x16 inputs."""
    params = dict(
        layers=[("input", InputLayer), ("conv1", Conv2DLayer), ("pool1", MaxPool2DLayer),
                ("hidden", DenseLayer), ("output", DenseLayer)],
        input_shape=(None, 1, 16, 16), conv1_num_filters=4, conv1_filter_size=(3, 3),
        pool1_pool_size=(2, 2), hidden_num_units=16, output_num_units=30,
        output_nonlinearity=None, update_learning_rate=0.01, update_momentum=0.9,
        max_epochs=3, batch_iterator_train=fk.BatchIterator(16),
        batch_iterator_test=fk.BatchIterator(16), verbose=0, random_state=0,
    )
    params.update(overrides)
    return fk.NeuralNet(**params)


class PickleBomb:
    """Unpickling this creates ``marker``: a stand-in for a model file that runs code."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        from pathlib import Path

        return (Path.touch, (Path(self.marker),))

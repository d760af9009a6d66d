"""Update rules: torch's fused kernels where available, the same maths either way."""
import pickle

import pytest
import torch

from facekeypoints import updates
from facekeypoints._safe_io import seal
from facekeypoints.checkpoint import Checkpoint
from tests.conftest import tiny_data, tiny_net


def _params(seed=0):
    g = torch.Generator().manual_seed(seed)
    p = [torch.nn.Parameter(torch.randn(50, 40, generator=g)),
         torch.nn.Parameter(torch.randn(40, generator=g))]
    grads = [[torch.randn_like(t) for t in p] for _ in range(3)]
    return p, grads


def _run(optimizer, params, grads):
    for step in grads:
        for t, g in zip(params, step):
            t.grad = g.clone()
        optimizer.step()
    return [t.detach().clone() for t in params]


@pytest.mark.parametrize("rule, reference", [
    (updates.nesterov_momentum,
     lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9, nesterov=True, foreach=False)),
    (updates.momentum, lambda p: torch.optim.SGD(p, lr=0.03, momentum=0.9, foreach=False)),
    (updates.sgd, lambda p: torch.optim.SGD(p, lr=0.03, foreach=False)),
    (updates.adam, lambda p: torch.optim.Adam(p, lr=0.03, foreach=False)),
    (updates.adamw, lambda p: torch.optim.AdamW(p, lr=0.03, foreach=False)),
])
def test_rules_take_the_same_steps_as_torchs_reference_optimizers(rule, reference):
    p1, grads = _params()
    p2, _ = _params()
    kwargs = {"learning_rate": 0.03}
    if rule in (updates.nesterov_momentum, updates.momentum):
        kwargs["momentum"] = 0.9
    ours = _run(rule(p1, **kwargs), p1, grads)
    theirs = _run(reference(p2), p2, grads)
    for a, b in zip(ours, theirs):
        torch.testing.assert_close(a, b, rtol=1e-6, atol=1e-7)


def test_fused_kernel_is_used_where_torch_has_it_and_skipped_where_not(monkeypatch):
    params, _ = _params()
    assert updates.nesterov_momentum(params).param_groups[0].get("fused") is True

    class NoFused(torch.optim.SGD):  # an older torch, or a device without the kernel
        def __init__(self, params, fused=None, **kwargs):
            if fused:
                raise RuntimeError("`fused=True` requires all the params to be on cuda")
            super().__init__(params, **kwargs)

    monkeypatch.setattr(updates.torch.optim, "SGD", NoFused)
    opt = updates.nesterov_momentum(iter(params))  # a generator must survive the retry
    assert isinstance(opt, NoFused) and not opt.param_groups[0].get("fused")
    assert len(opt.param_groups[0]["params"]) == 2


def test_a_checkpoint_does_not_impose_its_writers_kernel_choice(tmp_path):
    X, y = tiny_data()
    path = tmp_path / "ck.pt"
    tiny_net(max_epochs=2, callbacks=[("checkpoint", Checkpoint(path))]).fit(X, y)
    payload = torch.load(path, weights_only=True)
    assert payload["optimizer"]["param_groups"][0]["fused"] is True
    for group in payload["optimizer"]["param_groups"]:
        group["fused"] = "written elsewhere"
    torch.save(seal(payload), path)   # a valid checkpoint from a machine that chose otherwise
    net = tiny_net(max_epochs=3).fit(X, y, resume=path)
    assert net.optimizer_.param_groups[0]["fused"] is True
    assert len(net.history) == 3


def test_a_pickled_fused_net_falls_back_where_the_kernel_is_missing(monkeypatch):
    X, y = tiny_data()
    net = tiny_net(max_epochs=1).fit(X, y)
    blob = pickle.dumps(net, -1)
    real_init = torch.optim.SGD.__init__

    def without_fused(self, params, *args, fused=None, **kwargs):
        if fused:  # what an older torch, or a device without the kernel, says
            raise RuntimeError("`fused=True` requires all the params to be on cuda")
        real_init(self, params, *args, **kwargs)

    monkeypatch.setattr(torch.optim.SGD, "__init__", without_fused)
    loaded = pickle.loads(blob)
    assert loaded.optimizer_.param_groups[0]["fused"] is False
    monkeypatch.undo()
    loaded.partial_fit(X, y, epochs=1)  # training continues, on the default kernel
    assert len(loaded.history) == 2
    assert pickle.loads(blob).optimizer_.param_groups[0]["fused"] is True  # kept where it works

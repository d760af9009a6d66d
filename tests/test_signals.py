"""SIGTERM is handled like the first Ctrl-C by the Checkpoint callback; a second signal stops at
once; a resumed run marks the same epochs best as an uninterrupted one. In this process: the
signals are sent to it from a nolearn epoch handler."""
import os
import signal

import pytest
import torch

from facekeypoints._signals import StopSignals, Terminated, deferred
from facekeypoints.checkpoint import Checkpoint, read_checkpoint
from tests.conftest import tiny_data, tiny_net

EPOCHS = 8
# At this learning rate the validation loss stops improving after epoch 2, so a resumed run
# that forgot the best score so far would mark its first epoch best.
LR = 0.2


@pytest.fixture(autouse=True)
def harmless_signals():
    """A stray signal must not stop pytest."""
    before = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}
    yield
    for s, handler in before.items():
        signal.signal(s, handler)


def _net(callbacks=(), on_epoch_finished=(), max_epochs=EPOCHS):
    return tiny_net(max_epochs=max_epochs, update_learning_rate=LR, callbacks=list(callbacks),
                    on_epoch_finished=list(on_epoch_finished))


def _send_at(epoch, *signums):
    def handler(nn, history):
        if len(history) == epoch:
            for signum in signums:
                os.kill(os.getpid(), signum)
    return handler


def _same(a, b):
    sa, sb = a.module_.state_dict(), b.module_.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    strip = [[{k: v for k, v in h.items() if k not in ("dur", "batches")} for h in net.history]
             for net in (a, b)]
    assert strip[0] == strip[1]


def test_sigterm_finishes_the_epoch_checkpoints_and_the_resume_is_exact(tmp_path, capfd):
    X, y = tiny_data(n=48)
    straight = _net().fit(X, y)
    assert [h["valid_loss_best"] for h in straight.history][3:] == [False] * (EPOCHS - 3)

    path = tmp_path / "checkpoint.pt"
    cb = Checkpoint(path, every=None, handle_sigterm=True)
    stopped = _net([("checkpoint", cb)], [_send_at(3, signal.SIGTERM)]).fit(X, y)
    assert stopped.interrupted_ and cb.signal_ == signal.SIGTERM
    assert len(stopped.history) == 4                      # epoch 4 ran to its end
    assert read_checkpoint(path)["epoch"] == 4
    assert "Terminated (SIGTERM): finishing this epoch" in capfd.readouterr().err
    assert signal.getsignal(signal.SIGTERM) is not cb    # the previous handler is back

    resumed = _net().fit(X, y, resume=path)
    _same(straight, resumed)                              # best marks included
    scorer = dict(resumed.callbacks_)["valid_loss"]      # restored from the history
    assert scorer.best_score_ == min(h["valid_loss"] for h in resumed.history)


def test_a_second_signal_stops_at_once_and_writes_nothing_more(tmp_path):
    X, y = tiny_data(n=48)
    path = tmp_path / "checkpoint.pt"
    cb = Checkpoint(path, every=1, handle_sigint=True, handle_sigterm=True)
    net = _net([("checkpoint", cb)], [_send_at(3, signal.SIGTERM, signal.SIGINT)]).fit(X, y)
    assert net.interrupted_ and cb.signal_ == signal.SIGTERM
    assert read_checkpoint(path)["epoch"] == 3           # the one before the signals
    assert len(net.history) == 3


def test_stop_signals_raise_terminated_and_restore_the_handler():
    previous = signal.getsignal(signal.SIGTERM)
    with pytest.raises(Terminated), StopSignals():
        os.kill(os.getpid(), signal.SIGTERM)
        for _ in range(100):     # the handler runs at the next bytecode boundary
            pass
    assert signal.getsignal(signal.SIGTERM) is previous
    assert Terminated().exit_status == 143 and issubclass(Terminated, KeyboardInterrupt)


def test_deferred_holds_signals_until_the_block_ends():
    order = []
    with StopSignals(graceful=True) as stop:
        with deferred():
            os.kill(os.getpid(), signal.SIGTERM)
            order.append("inside")
            assert stop.received == []
        order.append("after")
    assert stop.received == [signal.SIGTERM] and order == ["inside", "after"]

"""A live progress bar for long runs: epochs done, ETA, current lr and momentum (tqdm)."""
from __future__ import annotations

from skorch.callbacks import Callback
from tqdm.auto import tqdm


class EpochProgress(Callback):
    """One tqdm bar per fit; pair it with ``EpochTable(sink=tqdm.write)`` so rows print above it.

    The bar disables itself when stderr is not a terminal (logs stay clean).
    """

    def __init__(self, desc=None, disable=None):
        self.desc = desc
        self.disable = disable

    def on_train_begin(self, net, **kwargs):
        done = len(net.history)
        self.bar_ = tqdm(total=max(net.max_epochs - done, 0), desc=self.desc, unit="epoch",
                         disable=self.disable, leave=False, dynamic_ncols=True)

    def on_epoch_end(self, net, **kwargs):
        entry = net.history[-1]
        post = {k: f"{entry[k]:.4g}" for k in ("learning_rate", "momentum", "valid_loss")
                if k in entry}
        self.bar_.set_postfix(post, refresh=False)
        self.bar_.update(1)

    def on_train_end(self, net, **kwargs):
        bar = getattr(self, "bar_", None)
        if bar is not None:
            bar.close()

"""The recipe's ``update_*`` vocabulary: which attributes hold the update rule's hyperparameters.

``update_learning_rate``, ``update_momentum`` and any other ``update_<name>`` keyword of a net
is a hyperparameter of its update rule, a float or a shared variable that a callback may
change between epochs; the net reads them into the optimizer at the start of every epoch.
"""
from __future__ import annotations

import inspect

import torch

from .shared import read_value
from .updates import check_hyperparameter

__all__ = ["Hyperparameters"]


class Hyperparameters:
    """Mixin of :class:`facekeypoints.NeuralNet`: its ``update_*`` hyperparameters."""

    def hyperparameter_attributes(self) -> dict[str, str]:
        """Map the update rule's hyperparameter names to the attributes that hold them.

        Returns
        -------
        dict
            ``{'learning_rate': 'update_learning_rate', 'momentum': 'update_momentum', ...}``.

        Examples
        --------
        >>> import torch
        >>> from facekeypoints import NeuralNet
        >>> net = NeuralNet(module=torch.nn.Identity, update_beta2=0.99)
        >>> attributes = net.hyperparameter_attributes()
        >>> sorted(attributes), attributes['beta2']
        (['beta2', 'learning_rate', 'momentum'], 'update_beta2')
        """
        return {k[len("update_"):]: k for k in vars(self)
                if k.startswith("update_") and not k.endswith("_")}

    def hyperparameter_values(self) -> dict[str, float]:
        """Return the current value of every set ``update_*`` hyperparameter, as a float.

        Returns
        -------
        dict
            ``{'update_learning_rate': 0.03, ...}``: what model files and checkpoints store.

        Examples
        --------
        >>> import torch
        >>> import facekeypoints as fk
        >>> net = fk.NeuralNet(module=torch.nn.Identity, update_learning_rate=fk.shared(0.5))
        >>> net.hyperparameter_values()
        {'update_learning_rate': 0.5}
        """
        return {attr: read_value(getattr(self, attr))
                for attr in self.hyperparameter_attributes().values()
                if getattr(self, attr) is not None}

    def update_hyperparameters(self) -> dict[str, float]:
        """Return the current ``update_*`` values the update rule takes, as floats.

        Read at the start of every training epoch into the optimizer; unset (None) ones are
        left out, and so is ``update_momentum`` for a rule without momentum. A ValueError
        names an ``update_<name>`` the rule does not take, or a value it cannot use.

        Returns
        -------
        dict
            By the rule's names, e.g. ``{'learning_rate': 0.01, 'momentum': 0.9}``.

        Examples
        --------
        >>> import torch
        >>> from facekeypoints import NeuralNet
        >>> from facekeypoints.updates import sgd
        >>> NeuralNet(module=torch.nn.Identity, update=sgd, update_learning_rate=0.1,
        ...           update_momentum=0.9).update_hyperparameters()
        {'learning_rate': 0.1}
        """
        update = self.update
        if isinstance(update, type) and issubclass(update, torch.optim.Optimizer):
            accepts = (set(inspect.signature(update.__init__).parameters) - {"self", "params"}
                       ) | {"learning_rate"}
        else:
            accepts = set(list(inspect.signature(update).parameters)[1:])
        values = {}
        for name, attr in self.hyperparameter_attributes().items():
            raw = getattr(self, attr)
            if raw is None:
                continue
            if name not in accepts:
                if name == "momentum":  # e.g. sgd: nothing to set
                    continue
                raise ValueError(f"{attr} is not a hyperparameter of the update rule "
                                 f"{getattr(self.update, '__name__', self.update)}; it takes "
                                 f"{', '.join('update_' + a for a in sorted(accepts))}")
            values[name] = check_hyperparameter(attr, read_value(raw))
        return values

"""Registries of the kinds a net is built from: iterators, criteria, layers and presets.

Each kind registers itself where it is defined, with a decorator::

    @register_iterator
    class MyIterator(fk.BatchIterator):
        def __init__(self, batch_size=128, jitter=0.1):
            super().__init__(batch_size)
            self.jitter = jitter

A registered iterator, criterion or layer is described as its kind and its constructor
parameters (:meth:`Registry.describe`) and rebuilt by calling its constructor with them
(:meth:`Registry.build`), so model files save a user's own kinds like the built-in ones, and
the constructor is the one place that checks the values. A model file can name only a kind
registered in the process that reads it (the registry is the whitelist: a file never names
code to run). Presets register the same way (:func:`register_preset`); ``presets.get(name)``
and the command line find them by name.

Examples
--------
>>> from facekeypoints.registry import ITERATORS
>>> from facekeypoints.iterators import FlipBatchIterator
>>> config = ITERATORS.describe(FlipBatchIterator(16, shuffle=True))
>>> config["kind"], config["batch_size"], config["shuffle"]
('FlipBatchIterator', 16, True)
>>> ITERATORS.build(config).batch_size
16
"""
from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator, Mapping
from typing import Any, TypeVar

__all__ = ["CRITERIA_REGISTRY", "ITERATORS", "LAYERS", "PRESETS", "Registry", "constructor_params",
           "parameter_names", "register_criterion", "register_iterator", "register_layer",
           "register_preset"]

T = TypeVar("T")


def constructor_params(obj: Any) -> dict[str, Any]:
    """The constructor parameters of ``obj`` and their current values (scikit-learn's rule).

    The names are those of ``type(obj).__init__`` (``self`` and ``*args``/``**kwargs`` left
    out); each value is the attribute of the same name. An object with a ``get_params``
    method that returns a dict is asked instead.

    Parameters
    ----------
    obj : object
        An iterator, criterion or anything built from keyword parameters it keeps as
        attributes of the same names.

    Returns
    -------
    dict
        ``{name: value}``; a parameter the object does not keep as an attribute is left out
        (its constructor default applies when rebuilt).

    Examples
    --------
    >>> from facekeypoints.registry import constructor_params
    >>> class Jitter:
    ...     def __init__(self, amount=0.1, seed=None):
    ...         self.amount, self.seed = amount, seed
    >>> constructor_params(Jitter(0.5))
    {'amount': 0.5, 'seed': None}
    """
    get_params = getattr(obj, "get_params", None)
    if callable(get_params) and not isinstance(obj, type):
        try:
            params = get_params(deep=False)
        except TypeError:
            params = get_params()
        if isinstance(params, dict):
            return dict(params)
    return {name: getattr(obj, name) for name in parameter_names(type(obj))
            if hasattr(obj, name)}


def parameter_names(kind: type) -> list[str]:
    """The keyword names ``kind(...)`` takes, from its ``__init__`` signature.

    Parameters
    ----------
    kind : type
        A class.

    Returns
    -------
    list of str
        Parameter names in signature order, without ``self``, ``*args`` and ``**kwargs``.
    """
    init = kind.__init__
    if init is object.__init__:
        return []
    try:
        signature = inspect.signature(init)
    except (TypeError, ValueError):
        return []
    return [p.name for p in signature.parameters.values()
            if p.name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]


class Registry(Mapping):
    """Kinds by name: a read-only mapping that :meth:`register` adds to.

    Parameters
    ----------
    what : str
        What the kinds are, for messages (``'batch iterator'``).
    base : type, optional
        A class every registered kind must subclass.

    Examples
    --------
    >>> from facekeypoints.registry import Registry
    >>> shapes = Registry("shape")
    >>> @shapes.register
    ... class Square:
    ...     def __init__(self, side=1):
    ...         self.side = side
    >>> list(shapes), shapes.describe(Square(3))
    (['Square'], {'kind': 'Square', 'side': 3})
    >>> shapes.build({'kind': 'Square', 'side': 2}).side
    2
    """

    def __init__(self, what: str, base: type | None = None) -> None:
        self.what = what
        self.base = base
        self._kinds: dict[str, Any] = {}
        self._fixed: set[str] = set()

    # -- the mapping ----------------------------------------------------------------------
    def __getitem__(self, name: str) -> Any:
        return self._kinds[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._kinds)

    def __len__(self) -> int:
        return len(self._kinds)

    def __repr__(self) -> str:
        return f"Registry({self.what!r}: {', '.join(self._kinds)})"

    # -- registering ----------------------------------------------------------------------
    def register(self, kind: T | None = None, *, name: str | None = None,
                 fixed: bool = False) -> T | Callable[[T], T]:
        """Register ``kind`` under ``name`` (default: its ``__name__``); usable as a decorator.

        Registering the same object again under the same name is allowed (a module imported
        twice); another object under a taken name is refused.

        Parameters
        ----------
        kind : class or callable, optional
            What to register. Omitted, this returns a decorator (``@register(name='x')``).
        name : str, optional
            The name files and ``get`` use.
        fixed : bool, default False
            Describe it without parameters: only instances with the constructor's default
            settings can be described (for classes defined elsewhere, such as torch's
            losses, whose parameters are not all plain values).

        Returns
        -------
        object
            ``kind`` itself, unchanged (or the decorator).

        Raises
        ------
        ValueError
            For a taken name or a kind that is not a subclass of ``base``.
        """
        if kind is None:
            return lambda k: self.register(k, name=name, fixed=fixed)
        key = name or kind.__name__
        if self.base is not None and not (isinstance(kind, type) and issubclass(kind, self.base)):
            raise ValueError(f"{kind!r} is not a {self.base.__name__} subclass, so it cannot be "
                             f"registered as a {self.what}")
        taken = self._kinds.get(key)
        if taken is not None and taken is not kind and _origin(taken) != _origin(kind):
            raise ValueError(f"a {self.what} named {key!r} is already registered "
                             f"({_origin(taken)}); register yours under another name: "
                             f"register(..., name='my_{key}')")
        self._kinds[key] = kind
        if fixed:
            self._fixed.add(key)
        else:
            self._fixed.discard(key)
        return kind

    def fixed_kinds(self) -> frozenset[str]:
        """The names registered with ``fixed=True`` (described without parameters).

        Returns
        -------
        frozenset of str
            Those names.
        """
        return frozenset(self._fixed)

    def name_of(self, obj: Any) -> str | None:
        """The name ``obj``'s class (or ``obj`` itself) is registered under, or None.

        Parameters
        ----------
        obj : object
            An instance or a registered kind.

        Returns
        -------
        str or None
            The registered name; None for an unregistered kind (subclasses do not inherit
            their parent's registration).
        """
        for kind in (obj, type(obj)):
            name = next((k for k, v in self._kinds.items() if v is kind), None)
            if name is not None:
                return name
        return None

    def get(self, name: str, default: Any = None) -> Any:
        """The kind registered as ``name``, or ``default``.

        Parameters
        ----------
        name : str
            A registered name.
        default : object, optional
            Returned when nothing is registered under ``name``.

        Returns
        -------
        object
            The kind or ``default``.
        """
        return self._kinds.get(name, default) if isinstance(name, str) else default

    def lookup(self, name: str) -> Any:
        """The kind registered as ``name``; a ValueError naming the known ones otherwise.

        Parameters
        ----------
        name : str
            A registered name.

        Returns
        -------
        object
            The kind.

        Raises
        ------
        ValueError
            When nothing is registered under ``name``.
        """
        kind = self.get(name)
        if kind is None:
            raise ValueError(f"unknown {self.what} {str(name)[:60]!r}; known: "
                             f"{', '.join(self._kinds)} (a {self.what} of your own must be "
                             f"registered before use, e.g. with register_{_slug(self.what)})")
        return kind

    # -- saving and rebuilding ------------------------------------------------------------
    def describe(self, obj: Any) -> dict[str, Any]:
        """``{'kind': name, **constructor parameters}`` of a registered kind's instance.

        Parameters
        ----------
        obj : object
            An instance of a registered kind.

        Returns
        -------
        dict
            The kind's name and :func:`constructor_params` of ``obj`` (values as they are;
            the caller makes them JSON).

        Raises
        ------
        ValueError
            When ``obj``'s class is not registered.
        """
        name = self.name_of(obj)
        if name is None:
            raise ValueError(f"{type(obj).__name__} is not a registered {self.what}; decorate "
                             f"its class with @register_{_slug(self.what)} so that model files "
                             "can name it")
        params = constructor_params(obj)
        if name in self._fixed:
            default = constructor_params(type(obj)())
            changed = [k for k, v in params.items() if not _same(v, default.get(k))]
            if changed:
                raise ValueError(f"{name} with {', '.join(changed)} set cannot be described: "
                                 "it is registered with its default settings only")
            return {"kind": name}
        if "kind" in params:
            raise ValueError(f"{name} has a constructor parameter named 'kind', which saved "
                             "descriptions use for the kind's name; rename it")
        return {"kind": name, **params}

    def build(self, config: Mapping[str, Any]) -> Any:
        """Rebuild an instance from :meth:`describe`'s output: ``kind(**parameters)``.

        Parameters
        ----------
        config : mapping
            ``{'kind': name, ...parameters}``.

        Returns
        -------
        object
            The new instance; its constructor has checked the parameters.

        Raises
        ------
        ValueError
            For an unknown kind, or parameters its constructor refuses (its own message).
        """
        if not isinstance(config, Mapping):
            raise ValueError(f"a {self.what} description is a JSON object with a 'kind', got "
                             f"{str(config)[:60]}")
        params = dict(config)
        kind = self.lookup(params.pop("kind", None))
        try:
            return kind(**params)
        except TypeError as exc:
            raise ValueError(f"{getattr(kind, '__name__', kind)} does not take these "
                             f"parameters: {exc}") from None


def _same(a, b):
    try:
        return a is b or bool(a == b)
    except Exception:  # noqa: BLE001 - tensors and other values without a plain ==
        return False


def _origin(kind):
    return f"{getattr(kind, '__module__', '?')}.{getattr(kind, '__qualname__', kind)}"


def _slug(what):
    return {"batch iterator": "iterator"}.get(what, what)


#: Batch iterators (``BatchIterator`` and its registered subclasses).
ITERATORS = Registry("batch iterator")
#: Criteria a model file may name, by class name.
CRITERIA_REGISTRY = Registry("criterion")
#: Layer kinds of ``layers=[(name, LayerClass), ...]``, by class name.
LAYERS = Registry("layer")
#: Preset factories, ``name(**overrides) -> NeuralNet``, in registration order.
PRESETS = Registry("preset")


def register_iterator(kind: T | None = None, *, name: str | None = None) -> T:
    """Class decorator: register a batch iterator, so that model files save and load it.

    The iterator is saved as its name and its constructor parameters (attributes of the same
    names, JSON values), and rebuilt by calling its constructor, which checks them.

    Parameters
    ----------
    kind : type, optional
        A :class:`~facekeypoints.iterators.BatchIterator` subclass.
    name : str, optional
        The name model files use (default: the class name).

    Returns
    -------
    type
        ``kind``, unchanged.

    Examples
    --------
    >>> import facekeypoints as fk
    >>> from facekeypoints.registry import ITERATORS, register_iterator
    >>> @register_iterator(name="doc_example_iterator")
    ... class Quiet(fk.BatchIterator):
    ...     pass
    >>> ITERATORS.describe(Quiet(8))["kind"]
    'doc_example_iterator'
    """
    return ITERATORS.register(kind, name=name)


def register_criterion(kind: T | None = None, *, name: str | None = None,
                       fixed: bool = False) -> T:
    """Class decorator: register a loss, so that model files save and load it.

    Its parameters are those of its ``get_params()`` when it has one, else its constructor
    parameters read from attributes of the same names.

    Parameters
    ----------
    kind : type, optional
        A ``torch.nn.Module`` loss class.
    name : str, optional
        The name model files use (default: the class name).
    fixed : bool, default False
        Record no parameters; only instances with the default settings can be saved
        (how torch's own losses are registered).

    Returns
    -------
    type
        ``kind``, unchanged.
    """
    return CRITERIA_REGISTRY.register(kind, name=name, fixed=fixed)


def register_layer(kind: T | None = None, *, name: str | None = None) -> T:
    """Class decorator: register a layer kind for ``layers=[...]`` lists and model files.

    Parameters
    ----------
    kind : type, optional
        A :class:`~facekeypoints.layers.LayerSpec` subclass.
    name : str, optional
        The name layer lists and model files use (default: the class name).

    Returns
    -------
    type
        ``kind``, unchanged.
    """
    return LAYERS.register(kind, name=name)


def register_preset(factory: T | None = None, *, name: str | None = None) -> T:
    """Function decorator: register a preset, ``factory(**overrides) -> NeuralNet``.

    ``presets.get(name)``, ``presets.NETS`` and the command line's preset names then include
    it. :func:`facekeypoints.presets.preset` also appends the shared ``**overrides``
    section to its docstring.

    Parameters
    ----------
    factory : callable, optional
        The preset function.
    name : str, optional
        Its name (default: the function's name).

    Returns
    -------
    callable
        ``factory``, unchanged.
    """
    return PRESETS.register(factory, name=name)

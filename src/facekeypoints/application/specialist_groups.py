"""Specialists' keypoint groups: names, columns, their own layout and flip pairs, epoch budgets.

The light half of :mod:`facekeypoints.specialists` (no torch, no scikit-learn): what the command
line needs to build its parser. A group's geometry is :data:`facekeypoints.layout.KAGGLE`'s
subset for its columns (``group.layout``): its flip pairs are the Kaggle pairs with both sides
in the group, renumbered, and a group that holds only one side of a pair is refused.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from .layout import KAGGLE, KeypointLayout

__all__ = ["SpecialistGroup", "DEFAULT_GROUPS", "GROUPS_BY_NAME", "get_groups",
           "local_flip_indices", "specialist_epochs"]


def _xy(*names):
    return tuple(f"{n}_{c}" for n in names for c in ("x", "y"))


def _pairs_by_name(flip_indices):
    """Kaggle column-index flip pairs as keypoint-name pairs (one per keypoint pair)."""
    columns = KAGGLE.columns
    return tuple(dict.fromkeys((columns[a][:-2], columns[b][:-2]) for a, b in flip_indices))


def _group_layout(columns: Sequence[str], base: KeypointLayout = KAGGLE) -> KeypointLayout:
    """``base.subset(columns)``, refusing a flip pair cut in half."""
    layout = base.subset(list(columns))
    for a, b in base.flip_pairs:
        if (a in layout.names) != (b in layout.names):
            kept, missing = (a, b) if a in layout.names else (b, a)
            raise ValueError(f"columns hold {kept + '_x'!r} but not its mirror image "
                             f"{missing + '_x'!r}")
    return layout


def local_flip_indices(columns: Sequence[str],
                       flip_indices: Iterable[tuple[int, int]] | None = None
                       ) -> tuple[tuple[int, int], ...]:
    """The flip pairs of ``columns``' own layout, as sorted positions in ``columns``.

    Parameters
    ----------
    columns : sequence of str
        Keypoint column names (``KEYPOINT_COLUMNS`` names), in the order a net predicts them.
    flip_indices : iterable of (int, int), optional
        Pairs of positions in ``KEYPOINT_COLUMNS`` that swap when a face is mirrored
        (default: those of :data:`facekeypoints.layout.KAGGLE`).

    Returns
    -------
    tuple of (int, int)
        The pairs with both columns in ``columns``, as sorted positions in ``columns``.

    Raises
    ------
    ValueError
        When a pair has only one side in ``columns``: mirroring would then need a column the
        net does not predict.

    Examples
    --------
    >>> local_flip_indices(["right_eye_center_x", "right_eye_center_y",
    ...                     "left_eye_center_x", "left_eye_center_y"])
    ((0, 2), (1, 3))
    >>> local_flip_indices(["nose_tip_x", "nose_tip_y"])
    ()
    """
    base = KAGGLE if flip_indices is None else KeypointLayout(
        KAGGLE.names, _pairs_by_name(flip_indices), KAGGLE.image_side)
    layout = _group_layout(columns, base)
    return tuple(sorted(tuple(sorted(p)) for p in layout.column_flip_pairs))


@dataclass(frozen=True)
class SpecialistGroup:
    """A keypoint group: a name and its columns, the outputs of one specialist net.

    Parameters
    ----------
    name : str
        The group's name (it names the member's model file in an ensemble directory).
    columns : sequence of str
        Its columns, x, y pairs in ``KEYPOINT_COLUMNS`` names; stored as a tuple.

    Attributes
    ----------
    layout : facekeypoints.layout.KeypointLayout
        The group's own layout, ``KAGGLE.subset(columns)`` (its nets get it as ``layout``).
    flip_indices : tuple of (int, int)
        The group's own flip pairs (the layout's, as sorted column positions).
    n_outputs : int
        Outputs of the group's net, ``len(columns)``.

    Raises
    ------
    ValueError
        For a column that is not in ``KEYPOINT_COLUMNS``, or a column whose mirror image is
        missing from ``columns``.

    Examples
    --------
    >>> eyes = SpecialistGroup("eyes", ("left_eye_center_x", "left_eye_center_y",
    ...                                 "right_eye_center_x", "right_eye_center_y"))
    >>> eyes.n_outputs, eyes.flip_indices
    (4, ((0, 2), (1, 3)))
    """

    name: str
    columns: tuple[str, ...]
    flip_indices: tuple[tuple[int, int], ...] = field(init=False)

    def __post_init__(self):
        unknown = [c for c in self.columns if c not in KAGGLE.columns]
        if unknown:
            raise ValueError(f"group {self.name!r}: unknown keypoint column {unknown[0]!r}")
        object.__setattr__(self, "columns", tuple(self.columns))
        object.__setattr__(self, "flip_indices", local_flip_indices(self.columns))

    @property
    def layout(self) -> KeypointLayout:
        """The group's keypoint layout: ``KAGGLE.subset(columns)``."""
        return _group_layout(self.columns)

    @property
    def n_outputs(self) -> int:
        """Outputs of the group's net: two per keypoint."""
        return len(self.columns)


#: The recipe's six groups (Daniel Nouri's SPECIALIST_SETTINGS), in its order.
DEFAULT_GROUPS = (
    SpecialistGroup("eye_centers", _xy("left_eye_center", "right_eye_center")),
    SpecialistGroup("nose_tip", _xy("nose_tip")),
    SpecialistGroup("mouth", _xy("mouth_left_corner", "mouth_right_corner",
                                 "mouth_center_top_lip")),
    SpecialistGroup("bottom_lip", _xy("mouth_center_bottom_lip")),
    SpecialistGroup("eye_corners", _xy("left_eye_inner_corner", "right_eye_inner_corner",
                                       "left_eye_outer_corner", "right_eye_outer_corner")),
    SpecialistGroup("eyebrows", _xy("left_eyebrow_inner_end", "right_eyebrow_inner_end",
                                    "left_eyebrow_outer_end", "right_eyebrow_outer_end")),
)
#: The default groups by name.
GROUPS_BY_NAME = {g.name: g for g in DEFAULT_GROUPS}


def get_groups(names: Iterable[str | SpecialistGroup] | None = None
               ) -> tuple[SpecialistGroup, ...]:
    """Specialist groups by name.

    Parameters
    ----------
    names : iterable of str or SpecialistGroup, optional
        Names of default groups (see ``GROUPS_BY_NAME``) or groups of one's own; by default
        all six of ``DEFAULT_GROUPS``.

    Returns
    -------
    tuple of SpecialistGroup
        The groups, in the order given.

    Raises
    ------
    ValueError
        For a name that is not a default group's.

    Examples
    --------
    >>> [g.name for g in get_groups()]
    ['eye_centers', 'nose_tip', 'mouth', 'bottom_lip', 'eye_corners', 'eyebrows']
    >>> get_groups(["nose_tip"])
    (SpecialistGroup(name='nose_tip', columns=('nose_tip_x', 'nose_tip_y'), flip_indices=()),)
    """
    if names is None:
        return DEFAULT_GROUPS
    out = []
    for n in names:
        if isinstance(n, SpecialistGroup):
            out.append(n)
        elif n in GROUPS_BY_NAME:
            out.append(GROUPS_BY_NAME[n])
        else:
            raise ValueError(f"unknown specialist group {n!r}; choose from "
                             f"{', '.join(GROUPS_BY_NAME)}")
    return tuple(out)


def specialist_epochs(base_epochs: int, n_rows: int, reference_rows: int) -> int:
    """The epoch budget for a specialist with ``n_rows`` training rows.

    The number of weight updates stays that of ``base_epochs`` epochs on ``reference_rows``
    rows: more rows, fewer epochs. This is the recipe's ``int(1e7 / y.shape[0])`` with the
    constant tied to the base net's budget.

    Parameters
    ----------
    base_epochs : int
        The base net's epoch budget.
    n_rows : int
        Training rows of the specialist (rows where its keypoints are present).
    reference_rows : int
        Rows the base budget is meant for; :func:`facekeypoints.specialists.fit_specialists`
        uses the rows with all 30 keypoints, i.e. what the base net trains on.

    Returns
    -------
    int
        ``base_epochs * reference_rows / n_rows``, rounded, at least 1.

    Examples
    --------
    >>> specialist_epochs(1000, n_rows=7033, reference_rows=2140)
    304
    """
    return max(1, int(round(base_epochs * reference_rows / max(1, n_rows))))

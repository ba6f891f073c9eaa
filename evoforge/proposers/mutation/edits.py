"""Kinds of edit, and how often each kind has made a program that was wasted.

Most of the waste of a model-free run is functional duplicates: a child computes
exactly what an evaluated program computes. Many come from edits whose kind nearly
always does so on the problem at hand: ``<`` for ``<=`` on continuous values (equal
values almost never occur), ``==`` for ``<`` on floats (the condition is then always
false and the program falls back to a simpler one). Which kinds these are depends on
the problem (on integer data ``<`` for ``<=`` matters), so the run learns it:
:func:`edit_kind` names an edit by the smallest sub-tree it changed (``operator_swap
Compare:Lt -> Compare:LtE``), and :class:`EditWaste` counts, per kind, the children
that were wasted (failed, or a functional duplicate of an evaluated program).

The proposer then keeps a drawn edit with probability ``(1 - waste) ** power``
(:meth:`EditWaste.keep_probability`), and otherwise draws again, so edits of kinds that
mostly waste a probe are made less often, without any being ruled out. Such redraws do
not count as failures of the operator.

The same is done per *site* (``site_avoidance``, on by default): per sub-tree of the
program that an edit changed and per sub-tree above it up to the edited statement
(:func:`describe_edit`). Many duplicates come from edits in one place of a good
program, the condition of an ``np.where`` say, where nearly every change leaves the
behaviour as it was; once its edits have mostly been wasted, edits elsewhere are drawn
instead. A sub-tree is known by its structural hash, so what was learned on a parent
holds for its children that kept it. :class:`EditRecords` holds both counts.
"""

from __future__ import annotations

import ast
import functools
import random
from typing import Any

from evoforge.proposers.mutation.regions import parse_region

PRIOR_WEIGHT = 2.0
"""Outcomes the run-wide waste rate counts for in a kind's estimate (its prior)."""
MIN_OUTCOMES = 10
"""Outcomes the run must have seen before any edit is drawn again."""
MIN_KEEP = 0.05
"""Every kind is kept at least this often when drawn, so its estimate keeps learning."""
MAX_KINDS = 1024
"""Kinds remembered; the least recently seen go first."""
SITES_REMEMBERED = 2048
"""Sites remembered; the least recently edited go first."""


_OPERATORS = (ast.operator, ast.cmpop, ast.boolop, ast.unaryop, ast.expr_context)


def _label(node: ast.AST) -> str:
    """A node's type, with its operator or called function where it has one."""
    name = type(node).__name__
    if isinstance(node, ast.BinOp | ast.BoolOp | ast.UnaryOp | ast.AugAssign):
        return f"{name}:{type(node.op).__name__}"
    if isinstance(node, ast.Compare):
        return f"{name}:{','.join(type(op).__name__ for op in node.ops)}"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute):
        return f"{name}:{ast.unparse(node.func)}"
    return name


def _hashes(tree: ast.AST) -> dict[int, int]:
    """A structural hash of every node of ``tree`` (positions left out), by ``id``.

    One pass, bottom up: comparing two trees by these hashes while descending costs
    time linear in their size, where comparing dumps at each level would not.
    """
    out: dict[int, int] = {}

    def visit(node: ast.AST) -> int:
        parts: list[object] = [type(node).__name__]
        for field in node._fields:
            value = getattr(node, field, None)
            if isinstance(value, list):
                parts.append(tuple(visit(v) if isinstance(v, ast.AST) else repr(v)
                                   for v in value))
            elif isinstance(value, ast.AST):
                parts.append(visit(value))
            else:
                parts.append(repr(value))
        out[id(node)] = hashed = hash(tuple(parts))
        return hashed

    visit(tree)
    return out


@functools.lru_cache(maxsize=64)
def _parsed(text: str) -> tuple[ast.Module, dict[int, int]] | None:
    """A region's tree and its :func:`_hashes`; cached, as a parent is edited many times."""
    tree = parse_region(text)
    return None if tree is None else (tree, _hashes(tree))


def _changed_site(a: ast.AST, b: ast.AST, ha: dict[int, int], hb: dict[int, int],
                  path: list[ast.AST] | None = None) -> tuple[ast.AST, ast.AST]:
    """The smallest pair of sub-trees of ``a`` and ``b`` that holds every difference.

    Descends while both nodes have the same type and exactly one child (a field, or
    one element of a list field of equal length) differs, and that child is not an
    operator. ``path``, when given, receives the nodes of ``a`` passed on the way
    down, the returned one last.
    """
    while type(a) is type(b):
        if path is not None:
            path.append(a)
        differing: list[tuple[ast.AST, ast.AST]] = []
        for field in a._fields:
            x, y = getattr(a, field, None), getattr(b, field, None)
            pairs: list[tuple[object, object]]
            if isinstance(x, list) and isinstance(y, list):
                if len(x) != len(y):
                    return a, b
                pairs = list(zip(x, y, strict=True))
            else:
                pairs = [(x, y)]
            for u, v in pairs:
                if isinstance(u, ast.AST) and isinstance(v, ast.AST):
                    if ha[id(u)] != hb[id(v)]:
                        differing.append((u, v))
                elif u != v:  # an identifier, a constant's value, or a node against None
                    return a, b
        if len(differing) != 1 or isinstance(differing[0][0], _OPERATORS):
            return a, b  # an operator is named by the node that holds it
        a, b = differing[0]
    if path is not None:
        path.append(a)
    return a, b


def edit_kind(operator: str, before: list[str], after: list[str]) -> str | None:
    """Name the edit that turned regions ``before`` into ``after``.

    ``"operator_swap Compare:Gt -> Compare:GtE"``: the operator, then the labels of
    the smallest changed sub-trees. An edit of several regions, or of a region that
    does not parse, is named by the operator and the number of changed regions.

    Returns:
        The name, or None when nothing changed.
    """
    return describe_edit(operator, before, after)[0]


def describe_edit(operator: str, before: list[str],
                  after: list[str]) -> tuple[str | None, list[str]]:
    """The edit's kind (see :func:`edit_kind`) and its sites.

    The sites name the sub-trees of the parent that hold the edit, from the edited
    statement down to the smallest changed sub-tree: ``"r0:<structural hash>"`` each
    (region index, then the hash of the sub-tree, which is the same wherever that
    sub-tree occurs, in this program or in a relative). An edit inside the condition of
    an ``np.where`` thus has the condition among its sites, whichever constant or
    operator in it changed. Empty when the edit spans regions or a region does not
    parse.
    """
    if len(before) != len(after):
        return f"{operator} regions", []
    changed = [i for i, (x, y) in enumerate(zip(before, after, strict=True)) if x != y]
    if not changed:
        return None, []
    if len(changed) > 1:
        return f"{operator} {len(changed)} regions", []
    index = changed[0]
    old, new = _parsed(before[index]), parse_region(after[index])
    if old is None or new is None:
        return f"{operator} unparsed", []
    path: list[ast.AST] = []
    a, b = _changed_site(old[0], new, old[1], _hashes(new), path)
    # the module and a function's whole definition hold every edit: no information
    sites = [f"r{index}:{old[1][id(node)]:x}" for node in path
             if not isinstance(node, ast.Module | ast.FunctionDef)]
    return f"{operator} {_label(a)} -> {_label(b)}", sites


class EditWaste:
    """Per kind of edit, how many children were made and how many were wasted.

    Args:
        power: a drawn edit is kept with probability ``(1 - waste) ** power``; 0 keeps
            every edit (the counts are still kept).
    """

    def __init__(self, power: float = 2.0, max_kinds: int = MAX_KINDS) -> None:
        self.power = power
        self.max_kinds = max_kinds
        self.counts: dict[str, list[int]] = {}
        """kind -> [children, wasted], least recently seen first."""
        self.total = [0, 0]
        """[children, wasted] over all kinds."""
        self.redrawn = 0
        """Edits drawn again because of their kind."""

    def waste(self, kind: str) -> float:
        """The estimated share of wasted children of ``kind``.

        The kind's own counts, with the run-wide share counted as
        :data:`PRIOR_WEIGHT` outcomes more, so a kind seen rarely sits near the
        run's average.
        """
        overall = self.total[1] / max(self.total[0], 1)
        made, wasted = self.counts.get(kind, (0, 0))
        return (wasted + PRIOR_WEIGHT * overall) / (made + PRIOR_WEIGHT)

    def keep_probability(self, kind: str) -> float:
        """How likely a drawn edit of ``kind`` is kept: ``(1 - waste) ** power``."""
        if self.power <= 0 or self.total[0] < MIN_OUTCOMES:
            return 1.0
        return max((1.0 - self.waste(kind)) ** self.power, MIN_KEEP)

    def keep(self, kind: str | list[str], rng: random.Random) -> bool:
        """Draw whether to keep an edit of ``kind``; counts the ones drawn again.

        For a list of kinds (an edit's sites) the least likely kept one decides.
        """
        keys = [kind] if isinstance(kind, str) else kind
        keep = min((self.keep_probability(k) for k in keys), default=1.0)
        if keep >= 1.0 or rng.random() < keep:
            return True
        self.redrawn += 1
        return False

    def observe(self, kind: str | list[str], wasted: bool) -> None:
        """Count one child of ``kind`` (or of each of a list of sites), wasted or not."""
        for key in [kind] if isinstance(kind, str) else kind:
            counts = self.counts.pop(key, None) or [0, 0]
            counts[0] += 1
            counts[1] += int(wasted)
            self.counts[key] = counts  # moved to the end: the least recently seen go first
        self.total[0] += 1
        self.total[1] += int(wasted)
        while len(self.counts) > self.max_kinds:
            del self.counts[next(iter(self.counts))]

    def stats(self) -> dict[str, Any]:
        """The counts, for the run's stored statistics (see :meth:`load_stats`)."""
        return {"kinds": {k: list(v) for k, v in self.counts.items()},
                "total": list(self.total), "redrawn": self.redrawn}

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore what :meth:`stats` returned; malformed entries are skipped."""
        kinds = stats.get("kinds")
        if isinstance(kinds, dict):
            self.counts = {
                str(k): [int(v[0]), int(v[1])] for k, v in kinds.items()
                if isinstance(v, list) and len(v) == 2
                and all(isinstance(x, int) and x >= 0 for x in v) and v[1] <= v[0]
            }
        total = stats.get("total")
        if (isinstance(total, list) and len(total) == 2
                and all(isinstance(x, int) and x >= 0 for x in total)):
            self.total = [int(total[0]), int(total[1])]
        if isinstance(stats.get("redrawn"), int):
            self.redrawn = max(int(stats["redrawn"]), 0)


class EditRecords:
    """One proposer's counts of wasted children per kind of edit and per site.

    Args:
        kind_power: :class:`EditWaste` power for kinds (``waste_avoidance``).
        site_power: the same for sites (``site_avoidance``).
    """

    def __init__(self, kind_power: float, site_power: float) -> None:
        self.kinds = EditWaste(kind_power)
        self.sites = EditWaste(site_power, max_kinds=SITES_REMEMBERED)

    def keep(self, kind: str, sites: list[str], rng: random.Random) -> bool:
        """Whether to keep a drawn edit of ``kind`` at ``sites`` (else draw again)."""
        return self.kinds.keep(kind, rng) and self.sites.keep(sites, rng)

    def observe(self, meta: dict[str, Any], wasted: bool) -> None:
        """Count a child whose proposal's ``meta`` names its edit (``edit_kind``,
        ``edit_sites``: :func:`describe_edit`)."""
        kind, sites = meta.get("edit_kind"), meta.get("edit_sites")
        if isinstance(kind, str):
            self.kinds.observe(kind, wasted)
        if isinstance(sites, list) and sites and all(isinstance(x, str) for x in sites):
            self.sites.observe(sites, wasted)

    def stats(self) -> dict[str, Any]:
        """``edits`` (per kind) and ``sites`` (per site), as :meth:`EditWaste.stats`."""
        return {"edits": self.kinds.stats(), "sites": self.sites.stats()}

    def load_stats(self, stats: dict[str, Any]) -> None:
        """Restore what :meth:`stats` returned (within a proposer's stats)."""
        for key, waste in (("edits", self.kinds), ("sites", self.sites)):
            if isinstance(stats.get(key), dict):
                waste.load_stats(stats[key])

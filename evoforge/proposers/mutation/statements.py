"""Statement operators: delete, duplicate and swap statements of a region."""

from __future__ import annotations

import ast
import copy
import random
from collections.abc import Callable, Iterator
from typing import Any

from evoforge.proposers.mutation.regions import (
    _DEFS,
    OpContext,
    _bodies,
    _emit,
    _is_docstring,
    _parse_all,
    _Region,
)
from evoforge.proposers.mutation.scope import (
    _FUNCS,
    _unbound_reads,
)

# ---------------------------------------------------------------------------
# statement operators
# ---------------------------------------------------------------------------

_NO_DELETE = (*_DEFS, ast.Import, ast.ImportFrom, ast.Pass, ast.Global, ast.Nonlocal)
_NO_DUPLICATE = (*_NO_DELETE, ast.Return, ast.Raise, ast.Break, ast.Continue)
_TERMINAL = (ast.Return, ast.Raise, ast.Break, ast.Continue)
_STMT_TRIES = 10

_Mutation = Callable[[list[_Region], random.Random], bool]


def _function_bodies(region: _Region) -> set[int]:
    """ids of the statement lists that are function bodies (also an indented region)."""
    assert region.tree is not None
    ids = {id(n.body) for n in ast.walk(region.tree) if isinstance(n, _FUNCS)}
    if region.indent:
        ids.add(id(region.tree.body))
    return ids


def _stmt_sites(parsed: list[_Region], excluded: tuple[type[Any], ...],
                keep_final_return: bool = False) -> list[tuple[list[ast.stmt], int]]:
    sites: list[tuple[list[ast.stmt], int]] = []
    for region in parsed:
        if region.tree is None:
            continue
        function_bodies = _function_bodies(region) if keep_final_return else set()
        for body in _bodies(region.tree):
            for index, stmt in enumerate(body):
                if isinstance(stmt, excluded) or _is_docstring(body, index):
                    continue
                if (id(body) in function_bodies and index == len(body) - 1
                        and isinstance(stmt, ast.Return) and stmt.value is not None):
                    continue  # the function would return None
                sites.append((body, index))
    return sites


def _checked(regions: list[str], ctx: OpContext, mutate: _Mutation) -> list[str] | None:
    """Apply ``mutate`` to fresh parses until a change leaves no new unbound read."""
    baseline = _unbound_reads(_parse_all(regions), ctx.names_outside)
    for _ in range(_STMT_TRIES):
        parsed = _parse_all(regions)
        if not mutate(parsed, ctx.rng):
            return None
        if _unbound_reads(parsed, ctx.names_outside) <= baseline:
            result = _emit(parsed)
            if result is not None:
                return result
    return None


def _delete(parsed: list[_Region], rng: random.Random) -> bool:
    sites = _stmt_sites(parsed, _NO_DELETE, keep_final_return=True)
    if not sites:
        return False
    body, index = rng.choice(sites)
    del body[index]
    if not body:
        body.append(ast.Pass())
    return True


def statement_deletions(regions: list[str],
                        names_outside: set[str] | None = None) -> Iterator[list[str]]:
    """Every version of ``regions`` with one statement removed, in source order.

    The same statements as :func:`op_stmt_delete` may remove (the simplification
    pass of the loop tries them one by one). Given ``names_outside`` (the names the
    program binds outside its regions), a deletion after which a name would be read
    before it is bound (the only assignment of a name used later) is skipped, as
    :func:`op_stmt_delete` skips it: it could only fail.
    """
    count = len(_stmt_sites(_parse_all(regions), _NO_DELETE, keep_final_return=True))
    baseline = (None if names_outside is None
                else _unbound_reads(_parse_all(regions), names_outside))
    for index in range(count):
        parsed = _parse_all(regions)
        body, at = _stmt_sites(parsed, _NO_DELETE, keep_final_return=True)[index]
        del body[at]
        if not body:
            body.append(ast.Pass())
        if (names_outside is not None and baseline is not None
                and not _unbound_reads(parsed, names_outside) <= baseline):
            continue
        result = _emit(parsed)
        if result is not None:
            yield result


def op_stmt_delete(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Delete one statement.

    Never a ``def``, ``class``, import, docstring, nor the final ``return`` of
    a function; never the statement binding a name that is read later and
    bound nowhere else before. A body left empty gets ``pass``.
    """
    return _checked(regions, ctx, _delete)


def _duplicate(parsed: list[_Region], rng: random.Random) -> bool:
    sites = _stmt_sites(parsed, _NO_DUPLICATE)
    if not sites:
        return False
    body, index = rng.choice(sites)
    start = 1 if _is_docstring(body, 0) else 0
    end = next((i for i, s in enumerate(body) if isinstance(s, _TERMINAL)), len(body))
    end = max(end, index + 1)
    position = rng.randint(start, end)
    body.insert(position, copy.deepcopy(body[index]))
    return True


def op_stmt_duplicate(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Copy one statement to a random place of the same body.

    The copy lands after the docstring, if any, before the first
    ``return``/``raise``/``break``/``continue`` of the body (so it is never dead
    code), and not above the statements binding the names it reads.
    """
    return _checked(regions, ctx, _duplicate)


def _swap(parsed: list[_Region], rng: random.Random) -> bool:
    choices: list[tuple[list[ast.stmt], list[int]]] = []
    for region in parsed:
        if region.tree is None:
            continue
        for body in _bodies(region.tree):
            indices = [i for i in range(len(body)) if not _is_docstring(body, i)]
            if len({ast.dump(body[i]) for i in indices}) >= 2:
                choices.append((body, indices))
    if not choices:
        return False
    body, indices = rng.choice(choices)
    for _ in range(20):
        if rng.random() < 0.5:
            k = rng.randrange(len(indices) - 1)
            i, j = indices[k], indices[k + 1]
        else:
            i, j = rng.sample(indices, 2)
        if ast.dump(body[i]) != ast.dump(body[j]):
            body[i], body[j] = body[j], body[i]
            return True
    return True  # unchanged this time; the caller tries again


def op_stmt_swap(regions: list[str], ctx: OpContext) -> list[str] | None:
    """Swap two different statements of the same body (docstrings stay first).

    Swaps that make a statement read a name before it is bound are refused.
    """
    return _checked(regions, ctx, _swap)

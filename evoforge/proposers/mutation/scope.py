"""Name resolution for the mutation operators: which names a region reads before binding them."""

from __future__ import annotations

import ast
import builtins

from evoforge.proposers.mutation.regions import (
    _DEFS,
    _NO_DESCEND_SCOPE,
    _Region,
    _walk_scope,
)

# ---------------------------------------------------------------------------
# name resolution: which names a region reads before (or without) binding them
# ---------------------------------------------------------------------------

_ALWAYS_BOUND = frozenset(dir(builtins)) | {
    "__name__", "__file__", "__doc__", "__spec__", "__loader__", "__package__",
    "__builtins__",
}
_FUNCS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _pattern_names(pattern: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(pattern):
        if isinstance(node, ast.MatchAs | ast.MatchStar) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            names.add(node.rest)
    return names


def _scope_bindings(body: list[ast.stmt]) -> set[str]:
    """Names bound directly in the scope whose statements are ``body``."""
    names: set[str] = set()
    for node in _walk_scope(body, _NO_DESCEND_SCOPE):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, _DEFS):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update(a.asname or a.name.split(".")[0] for a in node.names if a.name != "*")
        elif isinstance(node, ast.ExceptHandler) and node.name:
            names.add(node.name)
        elif isinstance(node, ast.match_case):
            names |= _pattern_names(node.pattern)
    return names


def _declared_global(body: list[ast.stmt]) -> set[str]:
    names: set[str] = set()
    for node in _walk_scope(body, _DEFS):
        if isinstance(node, ast.Global | ast.Nonlocal):
            names.update(node.names)
    return names


class _Flow:
    """Walks one scope in execution order, noting names read while unbound.

    An approximation: branches are taken in source order and loops once, so
    a name bound in either branch of an ``if`` counts as bound after it.
    """

    def __init__(self, local: set[str], defined: set[str], known: set[str]) -> None:
        self.local = local
        self.defined = set(defined)
        self.known = known
        self.problems: set[str] = set()

    def load(self, name: str) -> None:
        if name in self.local:
            if name not in self.defined:
                self.problems.add(name)
        elif name not in self.known:
            self.problems.add(name)

    def stmts(self, body: list[ast.stmt]) -> None:
        for stmt in body:
            self.stmt(stmt)

    def stmt(self, node: ast.stmt) -> None:
        if isinstance(node, _FUNCS):
            for expr in [*node.decorator_list, *node.args.defaults,
                         *[d for d in node.args.kw_defaults if d is not None]]:
                self.expr(expr)
            self.defined.add(node.name)
        elif isinstance(node, ast.ClassDef):
            for part in [*node.decorator_list, *node.bases, *node.keywords]:
                self.expr(part)
            self.defined.add(node.name)
        elif isinstance(node, ast.Assign):
            self.expr(node.value)
            for target in node.targets:
                self.target(target)
        elif isinstance(node, ast.AugAssign):
            if isinstance(node.target, ast.Name):
                self.load(node.target.id)
            self.expr(node.value)
            self.target(node.target)
        elif isinstance(node, ast.AnnAssign):
            if node.value is not None:
                self.expr(node.value)
                self.target(node.target)
        elif isinstance(node, ast.For | ast.AsyncFor):
            self.expr(node.iter)
            self.target(node.target)
            self.stmts(node.body)
            self.stmts(node.orelse)
        elif isinstance(node, ast.While | ast.If):
            self.expr(node.test)
            self.stmts(node.body)
            self.stmts(node.orelse)
        elif isinstance(node, ast.With | ast.AsyncWith):
            for item in node.items:
                self.expr(item.context_expr)
                if item.optional_vars is not None:
                    self.target(item.optional_vars)
            self.stmts(node.body)
        elif isinstance(node, ast.Try | getattr(ast, "TryStar", ast.Try)):
            self.stmts(node.body)
            for handler in node.handlers:
                if handler.type is not None:
                    self.expr(handler.type)
                if handler.name:
                    self.defined.add(handler.name)
                self.stmts(handler.body)
            self.stmts(node.orelse)
            self.stmts(node.finalbody)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            self.defined.update(a.asname or a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.Match):
            self.expr(node.subject)
            for case in node.cases:
                for sub in ast.walk(case.pattern):
                    if isinstance(sub, ast.MatchValue):
                        self.expr(sub.value)
                    elif isinstance(sub, ast.MatchClass):
                        self.expr(sub.cls)
                self.defined |= _pattern_names(case.pattern)
                if case.guard is not None:
                    self.expr(case.guard)
                self.stmts(case.body)
        else:
            for child in ast.iter_child_nodes(node):
                self.expr(child)

    def target(self, node: ast.expr) -> None:
        if isinstance(node, ast.Name):
            self.defined.add(node.id)
        elif isinstance(node, ast.Tuple | ast.List):
            for elt in node.elts:
                self.target(elt)
        elif isinstance(node, ast.Starred):
            self.target(node.value)
        else:
            self.expr(node)

    def expr(self, node: ast.AST, shadow: frozenset[str] = frozenset()) -> None:
        if isinstance(node, ast.Name):
            if isinstance(node.ctx, ast.Load) and node.id not in shadow:
                self.load(node.id)
            elif isinstance(node.ctx, ast.Store):
                self.defined.add(node.id)
        elif isinstance(node, ast.NamedExpr):
            self.expr(node.value, shadow)
            self.defined.add(node.target.id)
        elif isinstance(node, ast.Lambda):
            args = node.args
            for default in [*args.defaults, *[d for d in args.kw_defaults if d is not None]]:
                self.expr(default, shadow)
            params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
            params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
            self.expr(node.body, shadow | params)
        elif isinstance(node, ast.ListComp | ast.SetComp | ast.GeneratorExp | ast.DictComp):
            bound = set(shadow)
            for gen in node.generators:
                self.expr(gen.iter, frozenset(bound))
                bound |= {n.id for n in ast.walk(gen.target) if isinstance(n, ast.Name)}
                for cond in gen.ifs:
                    self.expr(cond, frozenset(bound))
            parts = [node.key, node.value] if isinstance(node, ast.DictComp) else [node.elt]
            for part in parts:
                self.expr(part, frozenset(bound))
        elif not isinstance(node, ast.stmt):
            for child in ast.iter_child_nodes(node):
                self.expr(child, shadow)


def _function_problems(func: ast.FunctionDef | ast.AsyncFunctionDef, known: set[str],
                       key: str, problems: set[tuple[str, str]]) -> None:
    args = func.args
    params = {a.arg for a in [*args.posonlyargs, *args.args, *args.kwonlyargs]}
    params |= {a.arg for a in (args.vararg, args.kwarg) if a is not None}
    declared = _declared_global(func.body)
    local = (_scope_bindings(func.body) | params) - declared
    flow = _Flow(local, params, known | declared)
    flow.stmts(func.body)
    problems.update((key, name) for name in flow.problems)
    for node in _walk_scope(func.body, _FUNCS):
        if isinstance(node, _FUNCS):
            _function_problems(node, known | local, f"{key}.{node.name}", problems)


def _unbound_reads(parsed: list[_Region], names_outside: set[str]) -> set[tuple[str, str]]:
    """``(scope, name)`` for each name a scope of the regions reads while unbound.

    Operators compare this before and after a change and refuse changes that
    add an entry (a statement moved above the one defining its input, the only
    definition of a name deleted, ...).
    """
    module_names: set[str] = set()
    for region in parsed:
        if region.tree is not None and not region.indent:
            module_names |= _scope_bindings(region.tree.body)
    known = set(_ALWAYS_BOUND) | names_outside | module_names
    problems: set[tuple[str, str]] = set()
    for i, region in enumerate(parsed):
        if region.tree is None:
            continue
        body = region.tree.body
        local = _scope_bindings(body)
        defined = local & names_outside if region.indent else set()
        flow = _Flow(local, defined, known)
        flow.stmts(body)
        problems.update((str(i), name) for name in flow.problems)
        inner = known | local
        for node in _walk_scope(body, _FUNCS):
            if isinstance(node, _FUNCS):
                _function_problems(node, inner, f"{i}.{node.name}", problems)
    return problems

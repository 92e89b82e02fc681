"""The query language of Nova's JsonFilter (the ``query`` scheduler hint).

A query is a JSON list ``[operator, argument, ...]``; an argument is a literal, a
nested query, or a ``$name`` naming a host state attribute (``$free_ram_mb``,
``$hypervisor_type``; ``$stats.key`` looks into a dict). Operators:

- ``=``, ``<``, ``>``, ``<=``, ``>=``: the first argument compared with each of the others
- ``in``: the first argument is one of the others
- ``not``, ``or``, ``and``

Arguments that are empty strings or name missing attributes are dropped, so a
comparison left with fewer than two arguments is false, as in Nova. Unlike Nova,
``not`` nested inside ``and``/``or`` negates (Nova returns a list there, which is
always true); at the top level both agree.

Example: ``["and", [">=", "$free_ram_mb", 1024], ["=", "$hypervisor_type", "fake"]]``.
"""

from __future__ import annotations

import json
import operator
from collections.abc import Callable
from typing import Any

from stackbox.compute.scheduler import host_state

_COMPARISONS: dict[str, Callable[[Any, Any], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    ">": operator.gt,
    "<=": operator.le,
    ">=": operator.ge,
}
OPERATORS = frozenset({*_COMPARISONS, "in", "not", "or", "and"})


class InvalidQuery(ValueError):
    """The hint is not a query: bad JSON, not a list, or an unknown operator."""


def parse(hint: Any) -> list[Any] | None:
    """The query in a ``query`` hint (a JSON string or an already parsed list).

    None when there is no query. Raises InvalidQuery, so the API can answer 400
    before anything is scheduled.
    """
    if hint is None or hint == "" or hint == []:
        return None
    query = hint
    if isinstance(hint, str):
        try:
            query = json.loads(hint)
        except ValueError as exc:
            raise InvalidQuery(f"query is not valid JSON: {exc}") from exc
    if not isinstance(query, list):
        raise InvalidQuery('query must be a JSON list such as [">=", "$free_ram_mb", 1024]')
    _check(query)
    return query or None


def _check(query: list[Any]) -> None:
    if not query:
        return
    if not isinstance(query[0], str) or query[0] not in OPERATORS:
        raise InvalidQuery(f"unknown query operator {query[0]!r}")
    for arg in query[1:]:
        if isinstance(arg, list):
            _check(arg)


def evaluate(query: list[Any], host: host_state.HostState) -> bool:
    """True if ``host`` satisfies ``query`` (already checked by ``parse``)."""
    return bool(_evaluate(query, host))


def _evaluate(query: list[Any], host: host_state.HostState) -> bool:
    if not query:
        return True
    op = query[0]
    args: list[Any] = []
    for raw in query[1:]:
        value = _evaluate(raw, host) if isinstance(raw, list) else _resolve(raw, host)
        if value is not None:
            args.append(value)
    if op == "and":
        return all(args)
    if op == "or":
        return any(args)
    if op == "not":
        return not all(args) if args else False
    if len(args) < 2:
        return False
    first, rest = args[0], args[1:]
    if op == "in":
        return first in rest
    compare = _COMPARISONS[op]
    try:
        return all(compare(first, other) for other in rest)
    except TypeError:
        # Comparing a number with a string: the host does not satisfy it.
        return False


def _resolve(arg: Any, host: host_state.HostState) -> Any:
    if not isinstance(arg, str):
        return arg
    if not arg:
        return None
    if not arg.startswith("$"):
        return arg
    name, *keys = arg[1:].split(".")
    if not name or name.startswith("_"):
        return None
    value = getattr(host, name, None)
    if callable(value):
        return None
    for key in keys:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value

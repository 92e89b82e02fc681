"""Nova's extra-spec operators: how a flavor's requirement matches a host's value.

A requirement is either a plain string (equal to the value) or starts with an
operator word:

- numbers: ``= N`` (value at least N), ``== N``, ``!= N``, ``>= N``, ``<= N``
- strings: ``s== v``, ``s!= v``, ``s< v``, ``s<= v``, ``s> v``, ``s>= v``
- ``<in> v`` (v is a substring of the value), ``<all-in> a b`` (all are),
- ``<or> a <or> b`` (the value is one of them).

A requirement whose first word is no operator is compared as a whole string.
A numeric operator on a value that is not a number does not match.
"""

from __future__ import annotations

import operator
from collections.abc import Callable

_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.ge,
    "==": operator.eq,
    "!=": operator.ne,
    ">=": operator.ge,
    "<=": operator.le,
}
_STRING: dict[str, Callable[[str, str], bool]] = {
    "s==": operator.eq,
    "s!=": operator.ne,
    "s<": operator.lt,
    "s<=": operator.le,
    "s>": operator.gt,
    "s>=": operator.ge,
}
_OPERATORS = {*_NUMERIC, *_STRING, "<in>", "<all-in>", "<or>"}


def match(value: str | None, requirement: str) -> bool:
    """True if the host's ``value`` satisfies the flavor's ``requirement``."""
    words = requirement.split()
    if not words or words[0] not in _OPERATORS:
        return value == requirement
    if value is None:
        return False
    op, operands = words[0], words[1:]
    if op == "<or>":
        # "<or> a <or> b": the alternatives sit at every other position.
        return value in operands[::2]
    if not operands:
        return False
    if op == "<all-in>":
        return all(word in value for word in operands)
    if op == "<in>":
        return operands[0] in value
    if op in _STRING:
        return _STRING[op](value, operands[0])
    try:
        return _NUMERIC[op](float(value), float(operands[0]))
    except ValueError:
        return False

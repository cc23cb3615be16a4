"""A tiny evaluator of the aggregation expressions ``storage.layout`` builds: the operators
it uses, as MongoDB evaluates them, so the expressions can be checked against plain-Python
models without a database (``test_storage_expressions``, ``test_storage_layout_model``).
Each of those modules also runs its expressions in the real database once, which checks
this evaluator against the server."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

MISSING = object()  # a field the document does not have


def _truthy(value: Any) -> bool:
    return value is not MISSING and value is not None and value is not False and value != 0


def _ordered(a: Any, b: Any, compare: Callable[[Any, Any], bool]) -> bool:
    # null and missing sort below every number (BSON order); the layouts compare numbers.
    low_a, low_b = a is MISSING or a is None, b is MISSING or b is None
    if low_a or low_b:
        return compare(0 if not low_a else -1, 0 if not low_b else -1)
    return compare(a, b)


def _path(value: Any, path: list[str]) -> Any:
    for key in path:
        value = value.get(key, MISSING) if isinstance(value, dict) else MISSING
    return value


def _array_item(value: Any) -> Any:
    return None if value is MISSING else value  # an array holds null where a value is missing


def evaluate(expr: Any, env: dict[str, Any]) -> Any:
    """``expr`` as MongoDB evaluates it; ``env`` binds the variables (``$$name``), and
    ``CURRENT`` the document that ``$field`` paths read."""
    if isinstance(expr, str) and expr.startswith("$$"):
        name, *path = expr[2:].split(".")
        return _path(env[name], path)
    if isinstance(expr, str) and expr.startswith("$"):
        return _path(env.get("CURRENT", {}), expr[1:].split("."))
    if isinstance(expr, list):
        return [_array_item(evaluate(e, env)) for e in expr]
    if not isinstance(expr, dict):
        return expr
    if len(expr) == 1 and next(iter(expr)).startswith("$"):
        [(op, arg)] = expr.items()
        return _operator(op, arg, env)
    # An object expression: a missing value leaves its field out.
    out = {k: evaluate(v, env) for k, v in expr.items()}
    return {k: v for k, v in out.items() if v is not MISSING}


def _operator(op: str, arg: Any, env: dict[str, Any]) -> Any:
    if op == "$literal":
        return arg
    if op in ("$filter", "$map"):
        items = evaluate(arg["input"], env)
        var = arg["as"]
        if op == "$filter":
            return [x for x in items if _truthy(evaluate(arg["cond"], env | {var: x}))]
        return [_array_item(evaluate(arg["in"], env | {var: x})) for x in items]
    if op == "$let":
        bound = {k: evaluate(v, env) for k, v in arg["vars"].items()}
        return evaluate(arg["in"], env | bound)
    if op == "$and":
        return all(_truthy(evaluate(a, env)) for a in arg)
    values = [evaluate(a, env) for a in arg] if isinstance(arg, list) else [evaluate(arg, env)]
    if op == "$ifNull":
        value, default = values
        return default if value is None or value is MISSING else value
    if op == "$ne":
        return values[0] != values[1]  # a missing value equals nothing
    if op == "$eq":
        return values[0] == values[1]
    if op in ("$gt", "$gte", "$lt", "$lte"):
        compare = {
            "$gt": lambda a, b: a > b,
            "$gte": lambda a, b: a >= b,
            "$lt": lambda a, b: a < b,
            "$lte": lambda a, b: a <= b,
        }[op]
        return _ordered(values[0], values[1], compare)
    if op == "$in":
        return values[0] in values[1]
    if op == "$size":
        return len(values[0])
    if op == "$slice":
        array, n = values
        return array[:n] if n >= 0 else array[n:]
    if op == "$cond":
        test, then, otherwise = values
        return then if _truthy(test) else otherwise
    if op == "$indexOfArray":
        array, value = values
        return array.index(value) if value is not MISSING and value in array else -1
    if op == "$arrayElemAt":
        array, at = values
        return array[at] if -len(array) <= at < len(array) else MISSING
    raise AssertionError(f"an operator this evaluator does not know: {op}")


def present(value: Any) -> Any:
    """``value`` without null fields, at any depth. Servers differ on a projected field an
    item lacks (MongoDB leaves it out, the embedded one gives null); readers take both as
    absent (``fields.from_record``), so comparisons with the server do too."""
    if isinstance(value, dict):
        return {k: present(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [present(v) for v in value]
    return value

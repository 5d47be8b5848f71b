"""Numbers in JSON bodies, read as JSON Schema reads them."""

from __future__ import annotations


def whole_number(value: object) -> int | None:
    """`value` as an int when JSON Schema's `integer` takes it: an int, or a number with no
    fraction (`1746.0`, as some JSON encoders write an integer); never a bool. None otherwise.
    """
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return None

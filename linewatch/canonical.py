"""Canonical spelling of raw PLC values (DESIGN S4).

A PLC may report state 2 as ``2``, ``2.0``, ``"02"`` or ``True``; the state map is
written once by an integrator. Both sides are brought to one spelling before matching.
"""

from __future__ import annotations

from decimal import Decimal, InvalidOperation

# Beyond this many digits a value is not a state code but noise; it stays as written.
_MAX_DIGITS = 40


def canonical_value(value: object) -> str:
    """Return the canonical text of a raw value: numbers in shortest form, booleans lower-case."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)
        if value.is_integer():
            return str(int(value))
        return _decimal_text(Decimal(repr(value)))
    text = str(value).strip()
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered
    if not text or not (text[0].isdigit() or text[0] in "+-."):
        return text
    try:
        number = Decimal(text)
    except InvalidOperation:
        return text
    if not number.is_finite() or abs(number.adjusted()) > _MAX_DIGITS:
        return text  # no PLC value has this many digits; don't spend time expanding it
    return _decimal_text(number)


def _decimal_text(number: Decimal) -> str:
    if number == 0:
        return "0"
    if number == number.to_integral_value():
        return str(int(number))
    # normalize() strips trailing zeros; format 'f' avoids exponent notation.
    return format(number.normalize(), "f")


def parse_number(value: object) -> float | None:
    """Read a value as a number for a counter or meter role; None when it is not one."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    if number != number or number in (float("inf"), float("-inf")):
        return None
    return number

"""Kubernetes resource quantities ("500m", "16Gi", "2") as exact Decimals.

The hub image ships no Kubernetes quantity parser, so this small one follows the API's rules:
binary suffixes (Ki..Ei), decimal suffixes (n, u, m, k, M, G, T, P, E) and plain or exponent numbers.
"""

from decimal import Decimal, InvalidOperation

_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}

GIB = Decimal(2**30)


def parse_quantity(value) -> Decimal:
    """Return the quantity as a Decimal in base units (cores, bytes, devices)."""
    if isinstance(value, bool):
        raise ValueError(f"not a quantity: {value!r}")
    if isinstance(value, (int, float, Decimal)):
        return Decimal(str(value))
    text = str(value).strip()
    number, factor = text, Decimal(1)
    if text[-2:] in _BINARY:
        number, factor = text[:-2], Decimal(_BINARY[text[-2:]])
    elif text[-1:] in _DECIMAL and not _is_number(text):
        number, factor = text[:-1], _DECIMAL[text[-1:]]
    if not _is_number(number):
        raise ValueError(f"not a quantity: {value!r}")
    return Decimal(number) * factor


def _is_number(text: str) -> bool:
    try:
        Decimal(text)
    except (InvalidOperation, ValueError):
        return False
    return text.strip() != "" and text.lower() not in ("nan", "inf", "-inf", "infinity")

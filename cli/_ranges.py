"""Option ranges declared once, with the option: ``typer.Option(0.05, callback=in_range("--alpha", 0, 1,
open_low=True, open_high=True, fix="e.g. --alpha 0.05"))``. A value outside is refused while the command
line (or a --config file's values, which pass through the same options) is parsed: exit 2, one message
naming the flag, the value, the range and the fix, before any work."""
from __future__ import annotations

from typing import Callable, Optional

import typer


def in_range(flag: str, low: Optional[float] = None, high: Optional[float] = None, *, open_low: bool = False,
             open_high: bool = False, fix: str = "") -> Callable:
    """A typer callback refusing a value of ``flag`` outside ``[low, high]`` (ends open where asked)."""
    def describe() -> str:
        if high is None:
            return f"{'above' if open_low else 'at least'} {low}"
        if low is None:
            return f"{'below' if open_high else 'at most'} {high}"
        return f"{low} {'<' if open_low else '<='} {flag} {'<' if open_high else '<='} {high}"

    def check(value):
        if value is None:
            return value
        bad = (low is not None and (value <= low if open_low else value < low)) or \
              (high is not None and (value >= high if open_high else value > high))
        if bad:
            raise typer.BadParameter(f"{flag} {value} is out of range: it must be {describe()}"
                                     + (f"; fix: {fix}" if fix else ""), param_hint=f"'{flag}'")
        return value

    return check

"""One rule for keyword options: an unknown name is a TypeError that names it and the closest valid one
(so ``headles=False`` fails loudly instead of doing nothing)."""

from __future__ import annotations

import difflib
from collections.abc import Collection, Iterable

__all__ = ["check_keywords"]


def check_keywords(given: Iterable[str], valid: Collection[str], where: str) -> None:
    """Raise TypeError for the first name in ``given`` that is not in ``valid``."""
    for name in given:
        if name in valid:
            continue
        closest = difflib.get_close_matches(name, sorted(valid), n=1, cutoff=0.0)
        hint = f"; did you mean {closest[0]!r}?" if closest else ""
        raise TypeError(f"{where} got an unexpected keyword argument {name!r}{hint}")

"""Warnings that point at the user's line, not at the tensorlib frame that raised them."""
from __future__ import annotations

import os
import sys
import warnings

_PKG = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside tensorlib."""
    level, f = 2, sys._getframe(1)    # stacklevel 2: warn_user's caller
    while f is not None and f.f_code.co_filename.startswith(_PKG):
        f = f.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level)

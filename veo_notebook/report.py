"""The old module path of the report; the code is in :mod:`veo_notebook.reporting`.

``veo_notebook.report`` is the function :func:`veo_notebook.reporting.report`. Importing
a submodule binds it as the package's attribute of the same name, so this file leaves in
``sys.modules`` not a module but :data:`alias`: the function itself when called, and
for any other name (``from veo_notebook.report import SECTIONS``) the same name in
:mod:`veo_notebook.reporting`, with a DeprecationWarning. ``veo.report(df, path)``
therefore works whatever was imported before.
"""

from __future__ import annotations

import functools
import sys
import warnings
from typing import Any

from . import reporting

NEW_PATH = reporting.__name__


class _OldPath:
    """The deprecated path ``veo_notebook.report``: calls the function, forwards names."""

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return reporting.report(*args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        value = getattr(reporting, name)
        warnings.warn(
            f"veo_notebook.report.{name} moved: import it from {NEW_PATH}",
            DeprecationWarning,
            stacklevel=2,
        )
        return value

    def __repr__(self) -> str:
        return f"<function {NEW_PATH}.report (also at its old path {__name__})>"


alias = functools.update_wrapper(_OldPath(), reporting.report)
sys.modules[__name__] = alias  # type: ignore[assignment]

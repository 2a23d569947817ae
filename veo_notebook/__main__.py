"""``python -m veo_notebook`` is the ``veo-notebook`` command."""

from .cli import main

raise SystemExit(main())

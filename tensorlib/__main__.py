"""``python -m tensorlib``: the ``tensorlib`` command (inspect, run, config...)."""
import sys

from .cli import main

sys.exit(main())

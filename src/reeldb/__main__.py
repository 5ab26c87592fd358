"""``python -m reeldb ...`` is the ``reeldb`` command."""

import sys

from .cli import main

sys.exit(main())

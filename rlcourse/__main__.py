"""``python -m rlcourse`` is the ``rlcourse`` command."""

import sys

from .cli import main

sys.exit(main())

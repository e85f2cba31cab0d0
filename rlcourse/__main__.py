"""``python -m rlcourse`` is the ``rlcourse`` command."""

import sys

from rlcourse.cli import main

sys.exit(main())

"""``python -m twofold``: the same as the ``twofold`` command."""

import sys

from twofold.cli import main

sys.exit(main())

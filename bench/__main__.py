"""``python -m bench``: see ``bench.main``."""

import sys

from .main import main

sys.exit(main())

"""`python -m ui.cli` is the same as `metallmix`."""

import sys

from ui.cli import main

sys.exit(main())

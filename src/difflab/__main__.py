"""`python -m difflab` runs the CLI."""

import sys

from difflab.console import main

sys.exit(main())

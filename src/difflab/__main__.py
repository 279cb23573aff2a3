"""`python -m difflab` runs the CLI."""

import sys

from difflab.cli import main

sys.exit(main())

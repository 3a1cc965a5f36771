"""`python -m regenesis ...` runs the command line (useful under `accelerate launch` and `torchrun`)."""

import sys

from regenesis.cli import main

sys.exit(main())

"""`python -m batchops_local` (what `make run` starts)."""

import sys

from batchops_local.stack import main

sys.exit(main())

"""`python -m batchops_local` (what `make run` starts)."""

import os
import sys

from batchops_local.stack import main

code = main()
# Everything the stack held lives in this process's memory (moto's tables and queues: millions
# of objects after a busy session), and tearing it down object by object took seconds at exit.
# The stack has stopped cleanly by now, so flush what was printed and leave at once.
sys.stdout.flush()
sys.stderr.flush()
os._exit(code)

"""Imported by the warm local scheduler before it forks (listed in warm_target.PRELOAD): records
which process imported it."""

import os

IMPORTED_BY = os.getpid()

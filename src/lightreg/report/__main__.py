"""``python -m lightreg.report RUN_DIR [--compare RUN_DIR ...] [--out DIR]``."""

import sys

from lightreg.cli.commands import report_main

sys.exit(report_main())

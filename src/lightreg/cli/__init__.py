"""The command line: config checks, building a run from a composed config, the run pipeline, the resume and
divergence guard, the console and the one handler that turns a user error into one line and exit code 2.

``python -m train`` (``src/train.py``) calls :func:`lightreg.cli.job.run_job`; nothing here is imported by the
library layers below it (penalties, solvers, models, callbacks, data)."""

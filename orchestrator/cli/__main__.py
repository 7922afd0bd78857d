"""`python -m orchestrator.cli` is the `mapquake` command."""

import sys

from orchestrator.cli.main import main

sys.exit(main())

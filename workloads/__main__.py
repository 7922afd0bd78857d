"""``python -m workloads [locust options]``: Locust on mapquake's locustfile, wherever it is installed.

In a container the controller cannot name a path inside site-packages, so the pods run this
instead of ``python -m locust -f <path>``; the arguments after it go to Locust unchanged.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

LOCUSTFILE = Path(__file__).resolve().parent / "locustfile.py"


def main() -> None:
    argv = [sys.executable, "-m", "locust", "-f", str(LOCUSTFILE), *sys.argv[1:]]
    os.execv(sys.executable, argv)  # Locust becomes the process: signals and exit codes are its own


if __name__ == "__main__":
    main()

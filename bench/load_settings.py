"""Settings of the gunicorn the throughput benchmark starts: the project's, plus the bench URLs
and a static root of its own (deployment settings serve the collected, hashed static files)."""

import tempfile
from pathlib import Path

from trustdesk.settings import *  # noqa: F403

ROOT_URLCONF = "bench.load_urls"
STATIC_ROOT = Path(tempfile.gettempdir()) / "trustdesk-bench-static"

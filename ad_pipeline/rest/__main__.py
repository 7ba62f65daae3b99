"""``python -m ad_pipeline.rest``: the same as ``ad-pipeline serve``."""

import sys

from .server import main

sys.exit(main())

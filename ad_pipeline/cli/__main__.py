"""``python -m ad_pipeline.cli``: the ``ad-pipeline`` command."""

import sys

from . import main

sys.exit(main())

"""``python -m concretelab``: the same as the ``concretelab`` console script."""

import sys

from concretelab.cli import main

sys.exit(main())

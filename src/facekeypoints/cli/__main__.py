"""``python -m facekeypoints.cli``: the ``facekeypoints`` command."""
import sys

from . import main

sys.exit(main())

"""``python -m effinrx``: the same command line as the ``effinrx`` script."""
import sys

from effinrx.cli import main

sys.exit(main())

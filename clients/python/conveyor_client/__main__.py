"""``python -m conveyor_client``: the command line of ``cli``."""
import sys

from .cli import main

sys.exit(main())

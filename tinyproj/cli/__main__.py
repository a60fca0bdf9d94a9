"""`python -m tinyproj.cli`."""
import sys

from . import main

sys.exit(main())

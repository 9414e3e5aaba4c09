"""`python -m lxcri` is the runtime's command line."""

import sys

from lxcri.cli.main import main

sys.exit(main())

"""`python -m lxcri` is the runtime's command line."""

import sys

from lxcri.entry import main

sys.exit(main())

"""`python -m kdfair ...` is `kdfair ...`; torchrun starts it as `torchrun ... -m kdfair train`."""

import sys

from kdfair.cli import main

sys.exit(main())

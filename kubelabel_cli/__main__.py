"""`python -m kubelabel_cli ...`, the same as the `kubelabel` console script."""

import sys

from kubelabel_cli.main import main

sys.exit(main())

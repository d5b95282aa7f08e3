import sys

from semsim.cli import main

sys.exit(main())

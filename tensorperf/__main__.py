import sys

from tensorperf.interface.cli import main

sys.exit(main())

import sys

from nord.cli import main

sys.exit(main())

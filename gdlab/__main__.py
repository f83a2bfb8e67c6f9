import sys

from gdlab.cli.main import main

sys.exit(main())

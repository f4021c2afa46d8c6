import sys

from indb.cli.main import main

sys.exit(main())

import sys

from emocast.cli import main

sys.exit(main())

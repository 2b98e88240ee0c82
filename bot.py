#!/usr/bin/env python3
"""QuickResponse entry point: ``python bot.py --help``."""

import sys

from quickresponse.cli import main

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

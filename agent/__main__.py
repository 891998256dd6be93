"""`python3 -m agent` (and the single-file bundle) run the agent's CLI."""

import sys

from agent.cli import main

if __name__ == "__main__":
    sys.exit(main())

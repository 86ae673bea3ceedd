"""``python -m portal.agent``: run the GPU agent (see portal/agent/__init__.py for its settings)."""

import sys

from portal.agent.runner import main

if __name__ == "__main__":
    sys.exit(main())

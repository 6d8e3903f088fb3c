import sys

from certdesk_agent.cli import main

sys.exit(main())

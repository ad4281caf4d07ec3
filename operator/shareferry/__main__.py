"""Allow ``python -m shareferry``."""

from shareferry.cli.main import main

raise SystemExit(main())

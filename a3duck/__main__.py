"""`python -m a3duck ...` is the `a3duck` command (launchers such as accelerate rely on it)."""

from a3duck.cli import main

raise SystemExit(main())

"""One module per `a3duck` command: ``add_arguments(parser)`` and ``run(args) -> int``, argparse
plus a thin call into the library. The table of commands is ``a3duck.cli.COMMANDS``."""

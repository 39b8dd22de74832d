"""One module per CLI subcommand: ``add_arguments(parser)``, ``run(args) -> int`` (the one-line help is
``effinrx.cli.COMMANDS``)."""

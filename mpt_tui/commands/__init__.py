"""The subcommands of `mpt`, one module each."""

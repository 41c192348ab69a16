"""Front ends of mpt: the `mpt` command line and the Textual app."""

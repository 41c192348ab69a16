from mpt_tui.cli import main

main()

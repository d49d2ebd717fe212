from mncompile.cli.app import main

main()

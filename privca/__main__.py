from privca.cli import main

main()

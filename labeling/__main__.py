from labeling.cli import main

main()

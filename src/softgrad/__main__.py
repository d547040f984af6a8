"""``python -m softgrad`` runs the command line."""

from softgrad.cli import main

if __name__ == "__main__":
    main()

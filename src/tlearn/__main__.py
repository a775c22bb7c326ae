"""``python -m tlearn``: the same as the ``tlearn`` command."""

from tlearn.cli import main

if __name__ == "__main__":
    main()

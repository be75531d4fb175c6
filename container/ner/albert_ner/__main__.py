"""`python -m albert_ner` is the `albert-ner` command."""

import sys

from albert_ner.cli import main

sys.exit(main())

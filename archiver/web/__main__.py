"""``python -m archiver.web``: the server ``archiver serve`` runs."""

import sys

from archiver.web.serve import main

sys.exit(main())

"""``python -m orchnb run PIPELINE.yaml --input TEXT`` / ``python -m orchnb serve PIPELINE.yaml``
(see ``python -m orchnb --help``)."""

from ._cli import main

raise SystemExit(main())

"""Exhibits and productions: what a matter's records become when they are filed or handed over.

``sets`` makes an exhibit set (one signed, Bates-stamped PDF per record: ``assemble`` lays it out,
``signing`` signs it with PAdES and an RFC 3161 document timestamp); ``produce`` exports a matter's
exhibits as a load-file production (Concordance DAT, Opticon OPT), a BagIt bag or a CSV index
(``loadfile`` writes and reads the DAT and OPT formats). Every exhibit set and production is a custody
entry; the records' own artifacts are read, never changed. Tables: ``store/migrations/exhibits.py``.
A matter is reached only through ``seam`` (the matters subsystem is another package).
"""

from __future__ import annotations

from archiver.exhibits.sets import ExhibitFile, ExhibitSet, Recorded, exhibits_of, make_set

__all__ = ["ExhibitFile", "ExhibitSet", "Recorded", "exhibits_of", "make_set"]

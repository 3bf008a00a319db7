"""Finding (not fixed, low): a watch run that meets an older record without main-text derives that
record's OWN main-text with the watch's current rules (runs.py: derive_for_url(select=select)), while
`archiver derive` (d8517ac) makes it with the declaration in force when the record was captured. The
same record gets a different "main-text" depending on which command made it first."""

import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, cli, page, site, store

from archiver.monitor.declarations import rules_at

a = store()
s = ["--store", str(a.root)]
with site() as srv:
    url = srv.base_url + "/terms"
    PAGE["terms"] = page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
    assert cli("watch", "add", url, "--select", "body", *s)[0] == 0
    old = a.capture(url).record_id  # a plain capture (no main-text) while "body" is in force
    assert cli("watch", "update", url, "--select", "#doc", *s)[0] == 0
    assert cli("watch", "run", *s)[0] in (0, 10)
print("rules in force when", old, "was captured:", rules_at(a, url, a.resolve(old).captured_at))
own = [ad.derived.main_text.select for _, ad in a.addenda(old, "derived")
       if ad and ad.derived and ad.derived.name == "main-text"]
print("its own main-text, made by the watch run, under:", own)

"""Finding (not fixed): `search --latest` keeps each URL's documents.last_record, the newest capture
whatever it was. When that capture's declared selector matched nothing, --latest answered with the
page chrome of that capture (before the fix on this branch) and now answers nothing for the document,
instead of its last version."""

import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, cli, cli_json, page, site, store

a = store()
s = ["--store", str(a.root)]
with site() as srv:
    url = srv.base_url + "/terms"
    PAGE["terms"] = page("doc", "<h2>1. Data</h2><p>We keep your data for training models.</p>")
    assert cli("watch", "add", url, "--select", "#doc", *s)[0] == 0
    first = cli_json("watch", "run", "--json", *s)[1]["results"][0]["record_id"]
    PAGE["terms"] = page("policy", "<h2>1. Data</h2><p>We keep your data for training models.</p>")
    print("run 2:", cli_json("watch", "run", "--json", *s)[1]["results"][0]["outcome"])
    for extra in ([], ["--latest"]):
        code, rep = cli_json("search", "training", "--json", *extra, *s)
        print(f"search training {extra}: exit {code}", [(h["record_id"], h["section"]) for h in rep["hits"]],
              "| the last version", first, "is a hit:", any(h["record_id"] == first for h in rep["hits"]))

"""Finding: search indexes a selector-missed capture (page chrome, not the document), and --latest
answers with it instead of the document's last version."""

import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, cli, cli_json, page, site, store

a = store()
s = ["--store", str(a.root)]
with site() as srv:
    url = srv.base_url + "/terms"
    PAGE["terms"] = page("doc", "<h2>1. Data</h2><p>We keep your data for training models.</p>")
    assert cli("watch", "add", url, "--select", "#doc", *s)[0] == 0
    print("run 1:", cli_json("watch", "run", "--json", *s)[1]["results"][0]["outcome"])
    PAGE["terms"] = page("policy", "<h2>1. Data</h2><p>We keep your data for training models.</p>",
                         nav="Home | Pricing | Blog | Careers")
    r = cli_json("watch", "run", "--json", *s)[1]["results"][0]
    print("run 2:", r["outcome"], r.get("missed_selector"), "record", r["record_id"])
    missed = r["record_id"]
    for q, extra in (("Pricing Careers", []), ("training", ["--latest"])):
        code, rep = cli_json("search", q, "--json", *extra, *s)
        print(f"search {q!r} {extra}: exit {code};",
              [(h["record_id"], h["section"], h["snippet"][:60]) for h in rep["hits"]])
        print("   hit is the selector-missed capture:", any(h["record_id"] == missed for h in rep["hits"]))

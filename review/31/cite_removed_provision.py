"""Finding: `cite PID` of a provision whose clause was REMOVED from the document renders in the prose
styles (bluebook, apa, mla, chicago) as an ordinary quotation of the clause: the status is only in the
record-block/CSL/BibTeX fields, so a filing citing it does not say the clause no longer exists."""

import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, cli, cli_json, page, site, store

a = store()
s = ["--store", str(a.root)]
with site() as srv:
    url = srv.base_url + "/terms"
    PAGE["terms"] = page("doc", "<h2>3. Training</h2><p>You can opt out of model training in your settings.</p>"
                                "<h2>4. Law</h2><p>Irish law applies.</p>")
    assert cli("watch", "add", url, "--select", "#doc", *s)[0] == 0
    rid = cli_json("watch", "run", "--json", *s)[1]["results"][0]["record_id"]
    pid = cli_json("provision", "add", rid, "--quote", "You can opt out of model training in your settings.",
                   "--json", *s)[1]["provision_id"]
    PAGE["terms"] = page("doc", "<h2>3. Training</h2><p>We train models on all content.</p>"
                                "<h2>4. Law</h2><p>Irish law applies.</p>")
    r = cli_json("watch", "run", "--json", *s)[1]
    print("run 2:", r["results"][0]["outcome"], [(c["status"]) for c in r["provisions"]])
    print("provision status:", cli_json("provision", "show", pid, "--json", *s)[1]["provision"]["status"])
    for style in ("bluebook", "apa", "mla"):
        code, out, err = cli("cite", pid, "--style", style, *s)
        print(f"cite --style {style} (exit {code}):", out.strip()[:400])
        print("   says the clause is gone:", "removed" in out.lower() or "no longer in the document" in out)

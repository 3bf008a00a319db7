"""Finding: a provision is re-found as "unchanged" when its words now sit inside longer words
("able to delete" inside "unable to delete", "limited" inside "unlimited"): refind tests a bare
substring, without word boundaries, so a change of meaning is reported as no change."""

import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, cli, cli_json, page, site, store

from archiver.provisions.matching import refind
from archiver.textdiff import split_sections

old_doc = "# 4. Your account\n\nYou are able to delete your account at any time.\n"
new_doc = "# 4. Your account\n\nYou are unable to delete your account at any time.\n"
clause = "able to delete your account at any time."
key = split_sections(old_doc, {"# 4. Your account"})[-1].key
f = refind(clause, key, split_sections(new_doc, {"# 4. Your account"}))
print("pure refind:", f.status, repr(f.text))

a = store()
s = ["--store", str(a.root)]
with site() as srv:
    url = srv.base_url + "/terms"
    PAGE["terms"] = page("doc", "<h2>4. Liability</h2><p>Our liability is limited to the fees you paid.</p>")
    assert cli("watch", "add", url, "--select", "#doc", *s)[0] == 0
    rid = cli_json("watch", "run", "--json", *s)[1]["results"][0]["record_id"]
    code, pin = cli_json("provision", "add", rid, "--quote", "limited to the fees you paid.", "--json", *s)
    print("provision add:", code, pin)
    PAGE["terms"] = page("doc", "<h2>4. Liability</h2><p>Our liability is unlimited to the fees you paid.</p>")
    r = cli_json("watch", "run", "--json", *s)[1]
    print("run 2:", r["results"][0]["outcome"], [(c["status"], c["text"]) for c in r["provisions"]])
    code, show = cli_json("provision", "show", pin["provision_id"], "--json", *s)
    print("provision show status:", show["provision"]["status"], "| text:", show["provision"]["text"])

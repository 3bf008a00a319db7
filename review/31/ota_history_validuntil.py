"""Finding: `watch import-ota` accepts any string as an OTA history's validUntil (a plain date, or
not a date at all); later `archiver derive` (rules_at) crashes with a traceback, and
`watch declarations` prints the raw string."""

import json
import sys, pathlib; sys.path.insert(0, str(pathlib.Path(__file__).parent))  # noqa: E401
from _common import PAGE, cli, cli_json, page, site, store

for until in ("2020-01-01", "not a date"):
    a = store()
    s = ["--store", str(a.root)]
    with site() as srv:
        url = srv.base_url + "/terms"
        PAGE["terms"] = page("doc", "<h2>1. Data</h2><p>We keep your data.</p>")
        d = a.root.parent / "Svc.json"
        d.write_text(json.dumps({"name": "Svc", "terms": {"Terms of Service": {"fetch": url, "select": "#doc"}}}))
        (a.root.parent / "Svc.history.json").write_text(json.dumps(
            {"Terms of Service": [{"fetch": url, "select": "body", "validUntil": until}]}))
        code, out, err = cli("watch", "import-ota", str(d), *s)
        print(f"validUntil={until!r}: import-ota exit {code}")
        code, out, err = cli("watch", "declarations", url, *s)
        print("  declarations:", code, out.strip().replace("\n", " | ")[:200])
        code, out, err = cli("capture", url, "--json", *s)
        rid = json.loads(out)["record_id"] if code == 0 else None
        try:
            code, out, err = cli("derive", rid, *s)
            print("  derive exit", code, (err or out).strip().splitlines()[-1:] if (err or out).strip() else "")
        except Exception as exc:  # noqa: BLE001
            print("  derive raised", type(exc).__name__, exc)

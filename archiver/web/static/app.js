// archiver web app: progressive enhancement only. Every page works without it except the live parts
// (copy buttons, citation styles, quote pinning, Verify now, capture progress). No dependencies.
"use strict";
(function () {
  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function api(url, options) {
    const opts = Object.assign({ credentials: "same-origin", headers: {} }, options || {});
    opts.headers = Object.assign({ "Accept": "application/json", "X-CSRF-Token": csrf() }, opts.headers);
    const resp = await fetch(url, opts);
    let body = null;
    try { body = await resp.json(); } catch (e) { body = null; }
    return { ok: resp.ok, status: resp.status, body: body };
  }

  function text(el, value) { el.textContent = value; }

  function el(tag, attrs, children) {
    const node = document.createElement(tag);
    Object.entries(attrs || {}).forEach(([k, v]) => node.setAttribute(k, v));
    (children || []).forEach((c) => node.append(c));
    return node;
  }

  // Copy buttons: data-copy="#selector" copies that element's text.
  document.addEventListener("click", async (ev) => {
    const btn = ev.target.closest("[data-copy]");
    if (!btn) return;
    const src = document.querySelector(btn.getAttribute("data-copy"));
    if (!src) return;
    const value = src.value !== undefined && src.tagName !== "PRE" ? src.value : src.textContent;
    try {
      await navigator.clipboard.writeText(value.trim());
      const old = btn.textContent;
      text(btn, "Copied");
      setTimeout(() => text(btn, old), 1500);
    } catch (e) {
      const range = document.createRange();
      range.selectNodeContents(src);
      const sel = window.getSelection();
      sel.removeAllRanges();
      sel.addRange(range);
    }
  });

  // Citation style switcher.
  const out = document.getElementById("citation-out");
  document.querySelectorAll("[data-style]").forEach((tab) => {
    tab.addEventListener("click", async () => {
      document.querySelectorAll("[data-style]").forEach((t) => t.setAttribute("aria-selected", "false"));
      tab.setAttribute("aria-selected", "true");
      const r = await api(out.dataset.url + "?style=" + encodeURIComponent(tab.dataset.style));
      text(out, r.ok ? r.body.citation : (r.body && r.body.detail) || "could not load the citation");
    });
  });

  // Quote pinning: fill from a selection in the document view, then ask for the pinned citation.
  const docText = document.getElementById("doc-text");
  const quoteBox = document.getElementById("quote-text");
  if (docText && quoteBox) {
    docText.addEventListener("mouseup", () => {
      const s = String(window.getSelection() || "").trim();
      if (s.length > 3) quoteBox.value = s;
    });
  }
  const quoteForm = document.getElementById("quote-form");
  if (quoteForm) {
    quoteForm.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const res = document.getElementById("quote-result");
      const q = quoteBox.value.trim();
      if (!q) { text(res, "Type or select an excerpt first."); return; }
      const style = document.getElementById("quote-style").value;
      const r = await api(quoteForm.dataset.url + "?style=" + encodeURIComponent(style) + "&quote=" + encodeURIComponent(q));
      res.replaceChildren();
      if (r.ok && r.body.quote) {
        res.append(el("p", { class: "notice ok" }, ["Found in this record" +
          (r.body.quote.section ? ", section “" + r.body.quote.section + "”" : "") + "."]));
        const pre = el("pre", { id: "quote-citation", tabindex: "0" }, [r.body.citation]);
        res.append(pre, el("p", {}, [el("a", { href: r.body.quote.fragment, id: "quote-fragment" }, ["text-fragment link"])]));
        const copy = el("button", { type: "button", class: "secondary", "data-copy": "#quote-citation" }, ["Copy pinned citation"]);
        res.append(copy);
      } else {
        res.append(el("p", { class: "notice fail" }, [(r.body && (r.body.detail || r.body.title)) || "Not in this record."]));
      }
    });
  }

  // Verify now: run every check and show each one.
  const verifyBtn = document.getElementById("verify-now");
  if (verifyBtn) {
    verifyBtn.addEventListener("click", async () => {
      const status = document.getElementById("verify-status");
      const list = document.getElementById("verify-checks");
      verifyBtn.disabled = true;
      text(status, "Verifying…");
      list.replaceChildren();
      const r = await api(verifyBtn.dataset.url, { method: "POST" });
      verifyBtn.disabled = false;
      if (!r.ok) { text(status, (r.body && r.body.detail) || "verification could not run"); return; }
      text(status, r.body.ok ? "VERIFIED: every check passed or was skipped with a reason." : "FAILED: see the checks marked FAIL.");
      status.className = "badge " + (r.body.ok ? "ok" : "fail");
      r.body.checks.forEach((c) => {
        list.append(el("li", { "data-check": c.name }, [
          el("span", { class: "badge status-" + c.status }, [c.status]),
          el("span", { class: "mono" }, [c.name]),
          el("span", { class: "detail" }, [c.detail])]));
      });
    });
  }

  // Capture jobs: poll each job's status until done or failed.
  document.querySelectorAll("[data-job-url]").forEach((row) => {
    const cell = row.querySelector("[data-job-status]");
    let tries = 0;
    const tick = async () => {
      tries += 1;
      const r = await api(row.dataset.jobUrl);  // re-read: "Keep anyway" points the row at a new job
      if (!r.ok) { text(cell, "unknown"); return; }
      const j = r.body;
      cell.replaceChildren();
      if (j.status === "done" && j.record_id) {
        cell.append(el("span", { class: "badge ok" }, ["done"]), " ", el("a", { href: "/records/" + j.record_id }, [j.record_id]));
        return;
      }
      if (j.status === "failed") {
        cell.append(el("span", { class: "badge fail" }, ["failed"]), " ", j.error || "");
        if (j.error_kind === "HTTPStatusError") {
          // The server answered with an error page (404, 410…): that answer can itself be evidence.
          const keep = el("button", { type: "button", class: "secondary small" }, ["Keep anyway"]);
          keep.addEventListener("click", async () => {
            keep.disabled = true;
            const form = document.querySelector('form[action="/capture"]');
            const val = (name) => ((form && form.elements[name]) ? form.elements[name].value : "") || null;
            const r = await api("/api/v1/captures", { method: "POST", headers: { "Content-Type": "application/json" },
              body: JSON.stringify({ url: j.url, entity: val("entity"), document: val("document"), allow_status: true }) });
            if (r.ok) { row.dataset.jobUrl = r.body.status_url; tries = 0; tick(); }
            else { text(keep, (r.body && r.body.detail) || "refused"); }
          });
          cell.append(" ", keep);
        }
        return;
      }
      cell.append(el("span", { class: "badge skip" }, [j.status]));
      if (tries < 600) setTimeout(tick, tries < 10 ? 500 : 2000);
    };
    tick();
  });
})();

// Public record pages: the citation styles are all in the page (it works without a login and as a
// static file); the tabs only show one at a time.
document.querySelectorAll("[data-public-style]").forEach((tab) => {
  tab.addEventListener("click", () => {
    document.querySelectorAll("[data-public-style]").forEach((t) => t.setAttribute("aria-selected", String(t === tab)));
    document.querySelectorAll("[data-public-panel]").forEach((panel) => {
      panel.hidden = panel.id !== "cite-" + tab.dataset.publicStyle;
    });
  });
});

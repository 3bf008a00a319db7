"""Finding (not fixed, design): a provision pinned as part of a sentence is "unchanged" while the
words around it in the same sentence reverse its meaning, since only the pinned words are looked for.
`provision add` accepts such pins without a word (the docs call it "a clause"), so a user pinning the
operative words of a sentence is never told when its condition or exception changes."""

from archiver.provisions.matching import refind
from archiver.textdiff import split_sections

H = {"# 3. Training"}
old = "# 3. Training\n\nAll users can opt out of model training in the settings.\n"
cases = {
    "exception added": "# 3. Training\n\nAll users can opt out of model training in the settings, "
                       "except where we are required to keep training on your content.\n",
    "scope narrowed": "# 3. Training\n\nOnly Enterprise users can opt out of model training in the settings.\n",
}
clause = "can opt out of model training in the settings."
key = split_sections(old, H)[-1].key
for name, new in cases.items():
    f = refind(clause, key, split_sections(new, H))
    print(f"{name}: {f.status} (similarity {f.similarity}) text={f.text!r}")

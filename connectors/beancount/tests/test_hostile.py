"""Hostile input against the beancount connector: references that are not UUIDs.

Pleo's accounting entry ids are UUIDs, but nothing in the connector may rely on that. Two
references that differ only in characters a file name or a beancount link cannot hold
(``dead beef``, ``dead/beef``, ``dead_beef``, ``DEAD_BEEF``) must get distinct receipt files,
block markers and links, so neither overwrites nor shadows the other, also on a file system
that ignores case.
"""

from __future__ import annotations

import pytest

from pleo_export_beancount.output import scan
from pleo_export_beancount.render import link_for, reference_token

pytestmark = pytest.mark.anyio

REFERENCES = ["dead beef", "dead/beef", "dead_beef", "DEAD_BEEF", "dead\nbeef", "../dead beef"]


async def test_references_that_differ_only_in_unsafe_characters_stay_apart(harness, make):
    entries = {}
    for n, reference in enumerate(REFERENCES):
        url = f"https://files.pleo.io/{n}"
        harness.downloads[url] = f"receipt of {reference!r}".encode()
        it = make.item(
            amount=1000 + n,
            entry_id=reference,
            files=[{"url": url, "type": "application/pdf", "size": 30}],
        )
        _, record = await harness.book(it)
        entries[reference] = record

    # One receipt file per reference, each holding its own receipt, none outside documents/.
    stored = sorted((harness.directory / "documents" / "2024").iterdir())
    assert len(stored) == len(REFERENCES)
    assert len({p.name.lower() for p in stored}) == len(REFERENCES)
    contents = {p.read_bytes() for p in stored}
    assert contents == {f"receipt of {r!r}".encode() for r in REFERENCES}
    # One block per reference, each with its own marker and link.
    blocks = scan(harness.output.read_bytes()).blocks
    assert len(blocks) == len(REFERENCES)
    assert len({link_for(r) for r in REFERENCES}) == len(REFERENCES)
    assert len({e.external_id for e in entries.values()}) == len(REFERENCES)
    entries_loaded, _ = harness.load()
    documents = [e for e in entries_loaded if type(e).__name__ == "Document"]
    assert len({d.filename for d in documents}) == len(REFERENCES)
    # After a restart, each reference is found as itself.
    connector = await harness.connector()
    for reference in REFERENCES:
        found = await connector.find_existing(reference)
        assert found is not None and found.external_id == entries[reference].external_id


def test_uuids_keep_their_token_and_others_get_a_hash() -> None:
    uuid = "3f2a9c1e-0b7d-4e55-9a1b-3f6a2c8d9e01"
    assert reference_token(uuid) == uuid  # ledgers written before keep their markers
    tokens = {reference_token(r) for r in REFERENCES}
    assert len(tokens) == len(REFERENCES)
    for token in tokens:
        assert token.isascii() and all(c.isalnum() or c in "._-" for c in token)
    # A safe reference that imitates another one's hashed token is hashed itself.
    forged = reference_token("dead beef")
    assert reference_token(forged) != forged
    assert len(reference_token("x" * 5000)) < 120

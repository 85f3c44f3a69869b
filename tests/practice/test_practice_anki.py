"""Anki export: a valid .apkg (a zip holding an Anki collection database) with one note per question."""

import sqlite3
import zipfile

from drill_bank import write_bank

from tfdojo.practice.anki import DECK_ID, MODEL_ID, export_anki


def _collection(apkg, folder):
    with zipfile.ZipFile(apkg) as z:
        assert z.testzip() is None
        assert "collection.anki2" in z.namelist()
        z.extract("collection.anki2", folder)
    return sqlite3.connect(folder / "collection.anki2")


def test_apkg_holds_one_note_per_question_with_prompt_answer_and_tags(tmp_path):
    bank = write_bank(tmp_path / "bank")
    apkg = tmp_path / "deck.apkg"
    assert export_anki(bank, apkg) == len(bank) == 4
    db = _collection(apkg, tmp_path)
    notes = db.execute("SELECT guid, flds, tags, mid FROM notes").fetchall()
    assert len(notes) == 4
    by_id = {flds.split("\x1f")[3]: (guid, flds.split("\x1f"), tags.split(), mid) for guid, flds, tags, mid in notes}
    guid, fields, tags, mid = by_id["kv-cache-70b"]
    assert fields[0] == "Question kv-cache-70b: explain it please."
    assert fields[1].startswith("<b>A short answer") and "forty-character minimum" in fields[1]
    assert set(tags) == {"inference-serving", "numeric", "medium", "grill"}
    assert mid == MODEL_ID
    assert "grill" not in by_id["write-softmax"][2]
    (deck_ids,) = db.execute("SELECT decks FROM col").fetchone()
    assert str(DECK_ID) in deck_ids


def test_ids_are_stable_across_exports(tmp_path):
    bank = write_bank(tmp_path / "bank")
    guids = []
    for name in ("one", "two"):
        (tmp_path / name).mkdir()
        export_anki(bank, tmp_path / name / "deck.apkg")
        db = _collection(tmp_path / name / "deck.apkg", tmp_path / name)
        guids.append(sorted(db.execute("SELECT guid FROM notes").fetchall()))
    assert guids[0] == guids[1]

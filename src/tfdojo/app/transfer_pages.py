"""Export / import of progress (the same JSON as `tfdojo export`) and the bank as an Anki deck."""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

from fastapi import APIRouter, Request, UploadFile
from fastapi.responses import HTMLResponse, Response

from tfdojo.app.pages import trainer_of
from tfdojo.app.render import page
from tfdojo.errors import InputTooLargeError, ProgressError
from tfdojo.practice.anki import export_anki
from tfdojo.practice.transfer import export_progress, import_progress, read_progress_file

router = APIRouter()
CHUNK = 64 * 1024


@router.get("/transfer", response_class=HTMLResponse)
def transfer(request: Request) -> HTMLResponse:
    """Download progress or the Anki deck; upload an export to merge."""
    t = trainer_of(request)
    return page("transfer.html", title="Export / import", message=None, cap=t.config.limits.import_bytes)


@router.get("/export.json")
def export_json(request: Request) -> Response:
    """Every attempt, session and card, as `tfdojo export` writes them."""
    t = trainer_of(request)
    with t.store() as store:
        document = export_progress(store, t.clock())
    body = json.dumps(document, indent=1, ensure_ascii=False)
    headers = {"content-disposition": 'attachment; filename="tfdojo-progress.json"'}
    return Response(body, media_type="application/json", headers=headers)


@router.get("/anki.apkg")
def anki(request: Request) -> Response:
    """The bank as an Anki deck (.apkg)."""
    t = trainer_of(request)
    with tempfile.TemporaryDirectory(prefix="tfdojo-anki-") as folder:
        path = Path(folder) / "tfdojo.apkg"
        export_anki(t.bank, path)
        data = path.read_bytes()
    headers = {"content-disposition": 'attachment; filename="tfdojo.apkg"'}
    return Response(data, media_type="application/octet-stream", headers=headers)


@router.post("/import", response_class=HTMLResponse)
def import_file(request: Request, progress: UploadFile) -> HTMLResponse:
    """Merge an uploaded export (attempts already here are skipped)."""
    t = trainer_of(request)
    cap = t.config.limits.import_bytes
    with tempfile.TemporaryDirectory(prefix="tfdojo-import-") as folder:
        path = Path(folder) / "progress.json"
        size = 0
        with path.open("wb") as sink:
            while chunk := progress.file.read(CHUNK):
                size += len(chunk)
                if size > cap:
                    raise InputTooLargeError(f"the file is over {cap // 2**20} MiB; is it really a tfdojo export?")
                sink.write(chunk)
        try:
            document = read_progress_file(path)
        except ProgressError as e:  # name the upload, not the temporary file
            raise ProgressError(str(e).replace(str(path), repr(progress.filename or "the upload"))) from None
    with t.store() as store:
        attempts, sessions = import_progress(store, document)
    skipped = len(document.attempts) - attempts
    message = f"imported {attempts} attempts and {sessions} sessions ({skipped} attempts were already here)"
    return page("transfer.html", title="Export / import", message=message, cap=cap)

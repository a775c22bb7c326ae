"""From an HTTP request to the bytes of one uploaded image, or a 4xx answer that says why not.

Two ways to send an image: a ``multipart/form-data`` upload with the field ``file`` (what a web
form and ``curl -F file=@digit.png`` send), or the raw file as the request body (any other
Content-Type: ``image/png``, ``application/octet-stream``, or curl's default for
``--data-binary @digit.png``); whether it is an image is the decoder's call. The body is read in chunks
and never beyond the size limit; a client that sends more gets 413, once its body has been
drained (up to a hard cap), so that it sees the answer instead of a reset connection.
"""

from __future__ import annotations

from fastapi import HTTPException, Request
from starlette.datastructures import UploadFile
from starlette.requests import ClientDisconnect

FIELD = "file"
MULTIPART_SLACK = 64 * 1024  # room for the multipart envelope (boundaries, part headers) around the file


def too_large(limit: int) -> HTTPException:
    """413, naming the limit in MB."""
    return HTTPException(413, f"the upload is larger than the server's limit of {limit / 2**20:g} MB (--max-upload-mb)")


async def _read_body(request: Request, limit: int, cap: int) -> bytes | None:
    """The body, or None when it is longer than ``limit`` (then drained up to ``cap``, not kept)."""
    chunks, size = [], 0
    try:
        async for chunk in request.stream():
            size += len(chunk)
            if size <= limit:
                chunks.append(chunk)
            elif size > cap:
                break  # stop reading: the connection closes after the answer
    except ClientDisconnect:
        raise HTTPException(400, "the client disconnected during the upload") from None
    return b"".join(chunks) if size <= limit else None


async def _form_file(request: Request, body: bytes) -> bytes:
    """The ``file`` part of a multipart body already read (python-multipart parses it)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if sent:
            return {"type": "http.disconnect"}
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    form = await Request(request.scope, replay).form(max_files=1, max_fields=16)
    try:
        upload = form.get(FIELD)
        if not isinstance(upload, UploadFile):
            got = ", ".join(sorted(set(form.keys()))) or "no fields"
            raise HTTPException(422, f"no image in the form field '{FIELD}' (got: {got}); send it as {FIELD}=@image")
        return await upload.read()
    finally:
        await form.close()


async def read_upload(request: Request, max_bytes: int) -> bytes:
    """The uploaded image's bytes; ``HTTPException`` (400, 413, 422) for a request without one."""
    multipart = request.headers.get("content-type", "").lower().startswith("multipart/form-data")
    limit = max_bytes + (MULTIPART_SLACK if multipart else 0)
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > 4 * limit:  # not worth draining: refuse at once
        raise too_large(max_bytes)
    body = await _read_body(request, limit, cap=4 * limit)
    if body is None:
        raise too_large(max_bytes)
    data = await _form_file(request, body) if multipart else body
    if len(data) > max_bytes:
        raise too_large(max_bytes)
    if not data:
        raise HTTPException(400, "the upload is empty (0 bytes)")
    return data

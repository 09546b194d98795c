"""Request bodies with a size cap checked before they are read.

`CappedUploadHandler` comes first in FILE_UPLOAD_HANDLERS, so it guards every multipart
body Django parses (the API, the admin, the login form; anonymous callers included): a
declared Content-Length over the cap is refused before a byte is read, and the bytes are
counted as they stream in (a body that lies about its length is cut off too). The cap is
ANNOTATION_MAX_UPLOAD_BYTES, or the setting a view names in `upload_limit_setting` (the
item import: ANNOTATION_MAX_IMPORT_BYTES). JSON bodies get the same treatment from
`JSONParser` with DATA_UPLOAD_MAX_MEMORY_SIZE, and JSON nested too deeply for the parser
is a 400, not a RecursionError.
"""

import io

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.core.files.uploadhandler import FileUploadHandler
from rest_framework import parsers
from rest_framework.exceptions import ParseError

from annotation.services.imports import json_too_deep


class BodyTooLarge(RequestDataTooBig):
    """A request body over its cap (the API answers 413, naming the field)."""

    def __init__(self, limit: int, field: str):
        super().__init__(f"The request body is larger than {limit} bytes.")
        self.limit = limit
        self.field = field


def upload_limit(request) -> int:
    match = getattr(request, "resolver_match", None)
    view = getattr(getattr(match, "func", None), "cls", None)
    name = getattr(view, "upload_limit_setting", "ANNOTATION_MAX_UPLOAD_BYTES")
    return getattr(settings, name)


class CappedUploadHandler(FileUploadHandler):
    def handle_raw_input(self, input_data, META, content_length, boundary, encoding=None):
        self.limit = upload_limit(self.request)
        self.received = 0
        if content_length > self.limit:
            raise BodyTooLarge(self.limit, "file")
        return None

    def receive_data_chunk(self, raw_data, start):
        self.received += len(raw_data)
        if self.received > self.limit:
            raise BodyTooLarge(self.limit, "file")
        return raw_data

    def file_complete(self, file_size):
        return None


class JSONParser(parsers.JSONParser):
    """DRF's JSON parser, with a size cap read before parsing (DRF reads the stream past
    DATA_UPLOAD_MAX_MEMORY_SIZE) and a 400 for JSON nested too deeply."""

    def parse(self, stream, media_type=None, parser_context=None):
        limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
        request = (parser_context or {}).get("request")
        declared = request.META.get("CONTENT_LENGTH") if request is not None else None
        if limit is not None and declared and declared.isdigit() and int(declared) > limit:
            raise BodyTooLarge(limit, "body")
        data = stream.read() if limit is None else stream.read(limit + 1)
        if limit is not None and len(data) > limit:
            raise BodyTooLarge(limit, "body")
        if json_too_deep(data):
            raise ParseError("JSON parse error - the body is nested too deeply.")
        return super().parse(io.BytesIO(data), media_type, parser_context)

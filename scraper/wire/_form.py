"""Form bodies as PHP reads them into ``$_POST``: what cassette matching compares and the replica sites read."""

from __future__ import annotations

import email.parser
import email.policy
from urllib.parse import parse_qsl

__all__ = ["parse_form"]


def parse_form(content_type: str, body: bytes) -> dict[str, str] | None:
    """The fields of a urlencoded or multipart body, as PHP's ``$_POST`` would see them."""
    kind = content_type.split(";", 1)[0].strip().lower()
    if kind == "application/x-www-form-urlencoded":
        return dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
    if kind == "multipart/form-data":
        head = f"Content-Type: {content_type}\r\n\r\n".encode("latin-1", "replace")
        message = email.parser.BytesParser(policy=email.policy.HTTP).parsebytes(head + body)
        fields: dict[str, str] = {}
        for part in message.iter_parts():
            name = part.get_param("name", header="content-disposition")
            if not name:
                continue
            payload = part.get_payload(decode=True)
            fields[str(name)] = payload.decode("utf-8", "replace") if isinstance(payload, bytes) else ""
        return fields
    return None

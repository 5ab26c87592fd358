"""contrib's citext (1.6), registered through the registry's hook: text on the wire (its
send and receive are text's), compared case-insensitively (format/citext.py). DuckDB's type
is VARCHAR, so a citext result column is marked by sql/result_types.py."""

from __future__ import annotations

from ..format.citext import check
from . import codecs as c
from .builtin import array_info, column_arrow
from .oids import CITEXT, CITEXT_ARRAY, PUBLIC_NS
from .registry import TypeInfo, register


def register_types() -> None:
    citext = register(TypeInfo(
        name="citext", oid=CITEXT, kind="citext", array=CITEXT_ARRAY, category="S", namespace=PUBLIC_NS,
        arrow=column_arrow("citext"), duck_also=("CITEXT",), pep249="STRING", extension="citext",
        send=c.text_send, recv=c.text_recv, py_in=check))
    register(array_info(citext, duck_also=("CITEXT[]",)))

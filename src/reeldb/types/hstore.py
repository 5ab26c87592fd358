"""contrib's hstore (1.8), registered through the registry's hook: DuckDB's
``MAP(VARCHAR, VARCHAR)`` in hstore's pair order, ``"a"=>"1"`` as text, hstore_send's binary
form, a dict in Python (format/hstore.py)."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from ..format import hstore
from .builtin import array_info, column_arrow
from .codecs import elements_text
from .oids import HSTORE, HSTORE_ARRAY, PUBLIC_NS
from .registry import TypeInfo, WireText, register


def _pairs(v: Any) -> Any:
    """An hstore value as DuckDB's Arrow map hands it over (pairs, or a dict)."""
    return v.items() if isinstance(v, dict) else [tuple(p) for p in v]


def _text_out(v: Any) -> str:
    return hstore.text(_pairs(v))


def _send(v: Any, text: WireText) -> bytes:
    return hstore.send(_pairs(v))


def _recv(b: bytes, text: WireText) -> str:
    """hstore_recv: the text form, for the SQL layer to read as an hstore."""
    return hstore.text(hstore.recv(b))


def _py_out(arr: pa.Array) -> list[Any]:
    """A dict, in hstore's key order."""
    return [None if v is None else dict(v) for v in arr.to_pylist()]


def register_types() -> None:
    info = register(TypeInfo(
        name="hstore", oid=HSTORE, kind="hstore", array=HSTORE_ARRAY, namespace=PUBLIC_NS,
        arrow=column_arrow("hstore"), duck=hstore.MAP, extension="hstore", text_out=_text_out, send=_send,
        recv=_recv, py_out=_py_out, py_in=hstore.from_python))
    register(array_info(info, text_out=elements_text(_text_out)))

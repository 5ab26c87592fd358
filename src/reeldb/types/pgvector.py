"""pgvector's types (vector, halfvec, sparsevec and their arrays), registered through the
registry's hook. Their values are numpy arrays; DuckDB shows all three as ``FLOAT[n]``, so
a result column of halfvec or sparsevec is marked by sql/result_types.py."""

from __future__ import annotations

import struct
from typing import Any

import numpy as np

from ..format.pgvector import sparse_recv, sparse_send, sparse_text, vector_text
from . import codecs as c
from .builtin import array_info, column_arrow
from .oids import (
    HALFVEC,
    HALFVEC_ARRAY,
    PUBLIC_NS,
    SPARSEVEC,
    SPARSEVEC_ARRAY,
    VECTOR,
    VECTOR_ARRAY,
)
from .registry import TypeInfo, WireText, register


def _vector_send(v: Any, text: WireText) -> bytes:
    a = np.asarray(v, dtype=">f4").reshape(-1)
    return struct.pack("!hh", len(a), 0) + a.tobytes()


def _halfvec_send(v: Any, text: WireText) -> bytes:
    a = np.asarray(v, dtype=np.float32).reshape(-1).astype(">f2")  # exact: stored as float16
    return struct.pack("!hh", len(a), 0) + a.tobytes()


def _vector(oid: int, name: str, array: int, **rest: Any) -> TypeInfo:
    return TypeInfo(name=name, oid=oid, kind=name, array=array, namespace=PUBLIC_NS, arrow=column_arrow(name), **rest)


def register_types() -> None:
    vector = register(_vector(VECTOR, "vector", VECTOR_ARRAY, send=_vector_send,
                              recv=c.vector_recv(">f4", np.float32, "vector")))
    halfvec = register(_vector(HALFVEC, "halfvec", HALFVEC_ARRAY, duck_also=("HALFVEC",), send=_halfvec_send,
                               recv=c.vector_recv(">f2", np.float16, "halfvec")))
    for element, element_text in ((vector, vector_text), (halfvec, vector_text)):
        register(array_info(element, kind=f"{element.name}_array", duck_also=(f"{element.name.upper()}[]",),
                            text_out=c.elements_text(element_text), send=c.vectors_send(element.oid), text_in=None))
    sparsevec = register(_vector(SPARSEVEC, "sparsevec", SPARSEVEC_ARRAY, duck_also=("SPARSEVEC",),
                                 text_out=sparse_text, send=lambda v, text: sparse_send(v),
                                 recv=lambda b, text: sparse_recv(b)))
    register(array_info(sparsevec, kind="sparsevec_array", duck_also=("SPARSEVEC[]",),
                        text_out=c.elements_text(sparse_text), send=c.vectors_send(SPARSEVEC)))
    assert sparsevec.array == SPARSEVEC_ARRAY and vector.array == VECTOR_ARRAY and halfvec.array == HALFVEC_ARRAY

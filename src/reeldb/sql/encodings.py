"""Client encodings: PostgreSQL's names for them and the Python codec that converts each.

The server's encoding is UTF8; a client may ``SET client_encoding`` (or send it in its
startup packet) to any encoding PostgreSQL converts to and from UTF8, and the wire server
then encodes and decodes every text on the wire with the matching Python codec.
"""

from __future__ import annotations

import re

from .. import errors

# PostgreSQL's client-side encodings -> Python codecs (the names psycopg uses too)
CODECS: dict[str, str] = {
    "UTF8": "utf-8", "SQL_ASCII": "utf-8",  # no conversion: the server's UTF-8 bytes go as they are
    "LATIN1": "latin_1", "LATIN2": "iso8859_2", "LATIN3": "iso8859_3", "LATIN4": "iso8859_4",
    "LATIN5": "iso8859_9", "LATIN6": "iso8859_10", "LATIN7": "iso8859_13", "LATIN8": "iso8859_14",
    "LATIN9": "iso8859_15", "LATIN10": "iso8859_16", "ISO_8859_5": "iso8859_5", "ISO_8859_6": "iso8859_6",
    "ISO_8859_7": "iso8859_7", "ISO_8859_8": "iso8859_8", "WIN866": "cp866", "WIN874": "cp874",
    "WIN1250": "cp1250", "WIN1251": "cp1251", "WIN1252": "cp1252", "WIN1253": "cp1253", "WIN1254": "cp1254",
    "WIN1255": "cp1255", "WIN1256": "cp1256", "WIN1257": "cp1257", "WIN1258": "cp1258", "KOI8R": "koi8_r",
    "KOI8U": "koi8_u", "EUC_JP": "euc_jp", "EUC_JIS_2004": "euc_jis_2004", "SJIS": "shift_jis",
    "SHIFT_JIS_2004": "shift_jis_2004", "EUC_CN": "gb2312", "EUC_KR": "euc_kr", "BIG5": "big5", "GBK": "gbk",
    "GB18030": "gb18030", "UHC": "cp949", "JOHAB": "johab",
}
# PostgreSQL's encodings with no conversion to or from UTF8 here (it has none for
# MULE_INTERNAL; Python has no EUC_TW codec)
UNCONVERTED = ("MULE_INTERNAL", "EUC_TW")

# PostgreSQL's other spellings (pg_encname_tbl), compared as it compares them: lower
# case, letters and digits only
_ALIASES = {
    "unicode": "UTF8", "iso88591": "LATIN1", "iso88592": "LATIN2", "iso88593": "LATIN3", "iso88594": "LATIN4",
    "iso88599": "LATIN5", "iso885910": "LATIN6", "iso885913": "LATIN7", "iso885914": "LATIN8",
    "iso885915": "LATIN9", "iso885916": "LATIN10", "iso88595": "ISO_8859_5", "iso88596": "ISO_8859_6",
    "iso88597": "ISO_8859_7", "iso88598": "ISO_8859_8", "alt": "WIN866", "win": "WIN1251", "koi8": "KOI8R",
    "mskanji": "SJIS", "shiftjis": "SJIS", "shiftjis2004": "SHIFT_JIS_2004", "tcvn": "WIN1258",
    "tcvn5712": "WIN1258", "vscii": "WIN1258", "abc": "WIN1258",
    **{f"windows{n}": f"WIN{n}" for n in (866, 874, 1250, 1251, 1252, 1253, 1254, 1255, 1256, 1257, 1258)},
}
_CLEAN = re.compile(r"[^a-z0-9]")
_BY_CLEAN = {_CLEAN.sub("", name.lower()): name for name in (*CODECS, *UNCONVERTED)} | _ALIASES


def client_encoding(value: str, setting: str = "client_encoding") -> str:
    """PostgreSQL's name for an encoding a client asks for; refused as PostgreSQL
    refuses a name it does not know (22023) or cannot convert (0A000)."""
    name = _BY_CLEAN.get(_CLEAN.sub("", value.lower()))
    if name is None:
        raise errors.InvalidParameterValue(f'invalid value for parameter "{setting}": "{value}"')
    if name in UNCONVERTED:
        raise errors.FeatureNotSupported(f'invalid value for parameter "{setting}": "{value}": conversion between '
                                         f"{name} and UTF8 is not supported")
    return name

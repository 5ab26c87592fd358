"""What of a client's SQL may reach DuckDB: functions, table functions, operators, types,
relations.

DuckDB has hundreds of functions Postgres does not (``read_text``, ``glob``, ``getenv``,
``duckdb_settings``, ``query``, ...), some of which read files, the environment or the
engine's own state. A statement reaches DuckDB only after ``check`` has walked the
client's own tree (before reeldb rewrites it, so the helpers reeldb emits, such as
``__pg_div`` or ``array_cosine_distance``, need no place here) and found every function,
table function, type and relation on these lists. Anything else is refused with the
error Postgres gives for a function that does not exist (42883), the same whether or not
DuckDB has a function of that name, so a client learns nothing about the engine.

The lists: Postgres functions that DuckDB runs with Postgres' meaning or that reeldb
rewrites (``pgcatalog``, ``rewrite``), pgvector's distance functions, and reeldb's own
(media metadata, vector helpers). DuckDB's file functions are on it only for a
connection opened with ``file_access=True`` (the embedded API's opt-in).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

from pglast import ast
from pglast.enums import A_Expr_Kind

from .. import errors

# PostgreSQL functions DuckDB has under the same name with another answer: refused with
# 0A000 saying why (correct or refused), never passed through. Each difference was found
# by running the same SQL on PostgreSQL and on reeldb.
DIFFERING = {
    "format": "DuckDB's format() does not read PostgreSQL's %s/%I/%L placeholders",
    "decode": "DuckDB's decode() takes no encoding name and does not return bytea",
    "encode": "DuckDB's encode() takes no encoding name and does not return text of bytea",
    "regexp_matches": "DuckDB's regexp_matches() returns a boolean, not the matched groups",
    "current_query": "DuckDB's current_query() shows reeldb's rewritten SQL, not the client's",
    "to_hex": "DuckDB's to_hex() is upper case and 64-bit for negative integers",
    "sha256": "DuckDB's sha256() returns hex text, not bytea",
    "split_part": "DuckDB's split_part() differs from PostgreSQL's for an empty delimiter",
    "string_to_array": "DuckDB's string_to_array() differs for an empty or NULL delimiter",
    "regexp_split_to_array": "DuckDB's regexp_split_to_array() differs on zero-width matches",
}
# large-object functions (sql/large_objects.py answers a SELECT whose every select-list item is one)
DIFFERING.update(dict.fromkeys((
    "lo_create", "lo_creat", "lo_open", "lo_close", "loread", "lowrite", "lo_lseek", "lo_lseek64", "lo_tell",
    "lo_tell64", "lo_truncate", "lo_truncate64", "lo_unlink", "lo_get", "lo_put", "lo_from_bytea", "lo_import",
    "lo_export"), "large-object functions are answered only in a SELECT whose every select-list item is one"))

# Scalar, aggregate and window functions.
FUNCTIONS = frozenset({
    # math
    "abs", "acos", "acosh", "asin", "asinh", "atan", "atan2", "atanh", "cbrt", "ceil", "ceiling",
    "cos", "cosh", "cot", "degrees", "exp", "factorial", "floor", "gcd", "lcm", "ln", "log",
    "log10", "mod", "pi", "pow", "power", "radians", "random", "round", "setseed", "sign", "sin",
    "sinh", "sqrt", "tan", "tanh", "trunc",
    # strings and bytes
    "ascii", "bit_count", "bit_length", "btrim", "char_length", "character_length", "chr",
    "concat", "concat_ws", "get_bit", "get_byte", "left", "length", "like_escape", "lower", "lpad", "ltrim",
    "md5", "normalize", "is_normalized", "octet_length", "overlay", "position", "regexp_replace",
    "repeat", "replace", "reverse", "right", "rpad", "rtrim", "set_bit", "set_byte",
    "similar_to_escape", "starts_with", "strpos",
    "substr", "substring", "translate", "upper",
    # date and time
    "age", "date_part", "date_trunc", "extract", "isfinite", "make_date", "make_time",
    "make_timestamp", "make_timestamptz", "now", "clock_timestamp", "statement_timestamp", "pg_sleep", "timezone", "to_timestamp",
    "transaction_timestamp",
    # arrays, JSON, uuid, enums, sequences
    "array_append", "array_cat", "array_length", "array_lower", "array_position", "array_prepend",
    "array_to_json", "array_to_string", "array_upper", "cardinality", "generate_series",
    "generate_subscripts", "unnest", "json_array_length", "json_build_object", "jsonb_build_object",
    "json_extract_path", "json_extract_path_text", "json_object", "json_strip_nulls", "row_to_json",
    "to_json", "gen_random_uuid", "enum_first", "enum_last", "enum_range", "currval", "nextval",
    "setval", "lastval",
    # aggregates
    "any_value", "array_agg", "avg", "bit_and", "bit_or", "bit_xor", "bool_and", "bool_or", "corr",
    "count", "covar_pop", "covar_samp", "json_agg", "jsonb_agg", "json_object_agg",
    "jsonb_object_agg", "max", "min", "mode", "percentile_cont", "percentile_disc", "regr_avgx",
    "regr_avgy", "regr_count", "regr_intercept", "regr_r2", "regr_slope", "regr_sxx", "regr_sxy",
    "regr_syy", "stddev", "stddev_pop", "stddev_samp", "string_agg", "sum", "var_pop", "var_samp",
    "variance",
    # window functions
    "cume_dist", "dense_rank", "first_value", "lag", "last_value", "lead", "nth_value", "ntile",
    "percent_rank", "rank", "row_number",
    # the catalog and the session, as Postgres clients ask (answered by pgcatalog)
    "col_description", "current_catalog", "current_database", "current_schema", "current_schemas",
    "current_setting", "current_user", "format_type", "has_any_column_privilege",
    "has_column_privilege", "has_database_privilege", "has_foreign_data_wrapper_privilege",
    "has_function_privilege", "has_language_privilege", "has_schema_privilege",
    "has_sequence_privilege", "has_server_privilege", "has_table_privilege",
    "has_tablespace_privilege", "inet_client_addr", "inet_client_port", "inet_server_addr",
    "inet_server_port", "obj_description", "pg_backend_pid", "pg_cancel_backend", "pg_char_to_encoding",
    "pg_collation_is_visible", "pg_conf_load_time", "pg_conversion_is_visible",
    "pg_current_xact_id", "pg_encoding_to_char", "pg_function_is_visible", "pg_get_constraintdef",
    "pg_get_expr", "pg_get_indexdef", "pg_get_partition_constraintdef", "pg_get_partkeydef",
    "pg_get_serial_sequence", "pg_get_statisticsobjdef_columns", "pg_get_userbyid",
    "pg_get_viewdef", "pg_has_role", "pg_indexes_size", "pg_is_in_recovery",
    "pg_is_other_temp_schema", "pg_my_temp_schema", "pg_notify", "pg_opclass_is_visible",
    "pg_operator_is_visible", "pg_opfamily_is_visible", "pg_postmaster_start_time",
    "pg_relation_is_publishable", "pg_relation_size", "pg_size_pretty", "pg_table_is_visible",
    "pg_table_size", "pg_terminate_backend", "pg_total_relation_size", "pg_ts_config_is_visible", "pg_ts_dict_is_visible",
    "pg_ts_parser_is_visible", "pg_ts_template_is_visible", "pg_type_is_visible", "pg_typeof",
    "session_user", "set_config", "shobj_description", "to_regclass", "to_regtype",
    "txid_current", "version",
    # advisory locks (answered by sql/advisory.py)
    "pg_advisory_lock", "pg_try_advisory_lock", "pg_advisory_unlock", "pg_advisory_unlock_all",
    "pg_advisory_xact_lock", "pg_try_advisory_xact_lock",
    # pgvector and reeldb
    "cosine_similarity", "cosine_distance", "l2_distance", "inner_product", "negative_inner_product",
    "vector_dims", "l2_norm", "binary_quantize", "l1_distance", "video_frames", "video_fps", "video_width", "video_height",
    "video_duration", "video_codec", "image_width", "image_height", "image_format", "blob_length",
    "media_meta",
})

# Functions a FROM clause may call (reeldb's own, reeldb_log() and the rest, are answered by
# the session before this check).
TABLE_FUNCTIONS = frozenset({
    "generate_series", "generate_subscripts", "unnest", "json_each", "pg_timezone_names",
})

# DuckDB's file readers: only with file_access (never for a served session).
FILE_FUNCTIONS = frozenset({
    "read_text", "read_blob", "read_csv", "read_csv_auto", "read_parquet", "parquet_scan",
    "read_json", "read_json_auto", "read_json_objects", "read_json_objects_auto", "read_ndjson",
    "read_ndjson_auto", "read_ndjson_objects", "glob", "sniff_csv", "parquet_metadata",
    "parquet_schema", "parquet_file_metadata", "parquet_kv_metadata",
})

# Types a cast may name: Postgres' (pg_catalog, arrays aside) and reeldb's column types.
TYPES = frozenset({
    "bit", "bool", "boolean", "box", "bpchar", "bytea", "char", "character", "cid", "cidr",
    "circle", "date", "daterange", "float4", "float8", "inet", "int", "int2", "int2vector", "int4",
    "int4range", "int8", "int8range", "integer", "interval", "json", "jsonb", "jsonpath", "line",
    "lseg", "macaddr", "macaddr8", "money", "name", "numeric", "decimal", "numrange", "oid",
    "oidvector", "path", "pg_lsn", "point", "polygon", "real", "record", "regclass",
    "regcollation", "regconfig", "regdictionary", "regnamespace", "regoper", "regoperator",
    "regproc", "regprocedure", "regrole", "regtype", "smallint", "bigint", "text", "tid", "time",
    "timestamp", "timestamptz", "timetz", "tsquery", "tsrange", "tstzrange", "tsvector",
    "txid_snapshot", "unknown", "uuid", "varbit", "varchar", "xid", "xid8", "xml", "float",
    "double", "string", "blob",
    # pgvector and reeldb
    "vector", "halfvec", "sparsevec", "tensor", "image", "video",
})

def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Operators: Postgres' own (pg_operator) and pgvector's; DuckDB's others (**, //, ...) are not.
OPERATORS = _names("""
!! !~ !~* !~~ !~~* # ## #- #> #>> % & && &< &<| &> * *< *<= *<> *= *> *>= + - -> ->> -|- / < <-> << <<=
<<| <= <> <@ <^ = > >= >> >>= >^ ? ?# ?& ?- ?-| ?| ?|| @ @-@ @> @? @@ @@@ ^ ^@ | |&> |/ |>> || ||/ ~ ~*
~<=~ ~<~ ~= ~>=~ ~>~ ~~ ~~* <=> <#> <+> <~> <%>
""")

_QUALIFIERS = ("pg_catalog",)  # the one schema whose functions and types are Postgres' own


def check(tree: Any, *, file_access: bool = False, relations: Callable[[str], bool] | None = None,
          user_types: Callable[[ast.TypeName], bool] | None = None) -> None:
    """Refuse ``tree`` (a statement or expression as the client wrote it) when it names a
    function, table function, operator or type not on the lists, or (``relations`` given: is this a
    relation of the session?) a relation that is neither the session's nor a CTE in
    scope; ``user_types`` (is this one of the branch's types, CREATE TYPE / DOMAIN, as
    reeldb rewrites it?) lets those through. Nodes reeldb built itself (no parser location) are trusted; their children are
    still checked."""
    table_functions = TABLE_FUNCTIONS | FILE_FUNCTIONS if file_access else TABLE_FUNCTIONS
    # a loop, not recursion: expressions can nest deeper than Python's stack
    stack: list[tuple[Any, frozenset[str]]] = [(tree, frozenset())]
    push = stack.append
    while stack:
        node, ctes = stack.pop()
        kind = type(node)
        if kind is tuple or kind is list:
            for n in node:
                if n is not None:
                    push((n, ctes))
            continue
        if not isinstance(node, ast.Node):
            continue
        if kind is ast.FuncCall:
            _check_function(node, FUNCTIONS)
        elif kind is ast.RangeFunction:
            _push_range_function(node, ctes, table_functions, push)
            continue
        elif kind is ast.A_Expr:
            if node.kind in _OPERATOR_KINDS:
                _check_operator(node)
        elif kind is ast.TypeName:
            if user_types is None or not user_types(node):
                _check_type(node)
        elif kind is ast.RangeVar:
            if relations is not None:
                _check_relation(node, ctes, relations)
            continue  # its alias holds names only
        elif kind in _WITH_STATEMENTS and node.withClause is not None:
            ctes = _push_ctes(stack, node.withClause, ctes)
        elif kind in _LEAVES:
            continue
        slots = _SLOTS.get(kind)
        if slots is None:
            slots = _SLOTS[kind] = tuple(s for s in kind.__slots__ if s not in ("location", "withClause"))
        for slot in slots:
            value = getattr(node, slot)
            if value is not None and (type(value) in (tuple, list) or isinstance(value, ast.Node)):
                push((value, ctes))


_SLOTS: dict[type, tuple[str, ...]] = {}  # per node class: the fields that may hold nodes
_WITH_STATEMENTS = (ast.SelectStmt, ast.InsertStmt, ast.UpdateStmt, ast.DeleteStmt)
_LEAVES = (ast.A_Const, ast.ParamRef, ast.String, ast.Integer, ast.Float, ast.Boolean, ast.A_Star, ast.ColumnRef)


def _push_range_function(node: ast.RangeFunction, ctes: frozenset[str], allowed: frozenset[str], push) -> None:
    """FROM f(...): ``f`` must be a table function on the list; its arguments are
    expressions like any other."""
    for item in node.functions or ():
        call = item[0] if isinstance(item, tuple | list) else item
        if isinstance(call, ast.FuncCall):
            _check_function(call, allowed)
            for part in (call.args, call.agg_filter, call.over, call.agg_order):
                if part is not None:
                    push((part, ctes))
        elif call is not None:
            push((call, ctes))
        if isinstance(item, tuple | list):
            push((tuple(n for n in item[1:] if n is not None), ctes))
    if node.coldeflist is not None:
        push((node.coldeflist, ctes))


def _push_ctes(stack: list, with_clause: ast.WithClause, outer: frozenset[str]) -> frozenset[str]:
    """Queue the CTE bodies, each seeing what Postgres lets it see (the CTEs before it, or
    all of them under RECURSIVE); returns the names the statement itself sees."""
    names = [cte.ctename for cte in with_clause.ctes or ()]
    for i, cte in enumerate(with_clause.ctes or ()):
        visible = names if with_clause.recursive else names[:i]
        stack.append((cte.ctequery, outer | frozenset(visible)))
    return outer | frozenset(names)


def _check_function(call: ast.FuncCall, allowed: Iterable[str]) -> None:
    if call.location is None:  # built by reeldb's rewrites, not written by the client
        return
    names = [n.sval for n in call.funcname]
    qualifiers = [q.lower() for q in names[:-1]]
    if names[-1].lower() in allowed and all(q in _QUALIFIERS for q in qualifiers):
        return
    why = DIFFERING.get(names[-1].lower()) if all(q in _QUALIFIERS for q in qualifiers) else None
    if why is not None:
        raise errors.FeatureNotSupported(f"{names[-1]}() is not supported: {why}")
    raise errors.UndefinedFunction(f"function {'.'.join(names)}({_argument_types(call)}) does not exist")


def _argument_types(call: ast.FuncCall) -> str:
    """The argument types as Postgres names them in the error, where the text says them;
    ``...`` where it does not (a column, an expression)."""
    if call.agg_star:
        return "*"
    types = [_literal_type(a) for a in call.args or ()]
    return "..." if None in types else ", ".join(t for t in types if t is not None)


def _literal_type(node: Any) -> str | None:
    if isinstance(node, ast.TypeCast):
        name = node.typeName.names[-1].sval.lower()
        shown = _TYPE_DISPLAY.get(name, name)
        return shown + "[]" * len(node.typeName.arrayBounds or ())
    if isinstance(node, ast.A_Const):
        v = node.val
        if node.isnull or isinstance(v, ast.String):
            return "unknown"
        if isinstance(v, ast.Integer):
            return "integer"
        if isinstance(v, ast.Float):  # Postgres: an integer too big for int4 is int8, then numeric
            digits = v.fval.lstrip("-")
            return "bigint" if digits.isdigit() and int(digits) < 2**63 else "numeric"
        if isinstance(v, ast.Boolean):
            return "boolean"
    return None


_TYPE_DISPLAY = {"int4": "integer", "int8": "bigint", "int2": "smallint", "float4": "real",
                 "float8": "double precision", "bool": "boolean", "varchar": "character varying",
                 "bpchar": "character", "timestamptz": "timestamp with time zone",
                 "timestamp": "timestamp without time zone", "timetz": "time with time zone",
                 "time": "time without time zone"}


_OPERATOR_KINDS = (A_Expr_Kind.AEXPR_OP, A_Expr_Kind.AEXPR_OP_ANY, A_Expr_Kind.AEXPR_OP_ALL)


def _check_operator(expr: ast.A_Expr) -> None:
    if expr.location is None or not expr.name:  # built by reeldb
        return
    names = [n.sval for n in expr.name]
    qualifiers = [q.lower() for q in names[:-1]]
    if names[-1] in OPERATORS and all(q in _QUALIFIERS for q in qualifiers):
        return
    sides = [_literal_type(side) or "..." for side in (expr.lexpr, expr.rexpr) if side is not None]
    shown = f"{sides[0]} {names[-1]} {sides[1]}" if len(sides) == 2 else f"{names[-1]} {sides[0]}"
    raise errors.UndefinedFunction(f"operator does not exist: {shown}")


def _check_type(tn: ast.TypeName) -> None:
    if tn.location is None or tn.names is None:  # built by reeldb
        return
    names = [n.sval for n in tn.names]
    qualifiers = [q.lower() for q in names[:-1]]
    if names[-1].lower() in TYPES and all(q in _QUALIFIERS for q in qualifiers):
        return
    raise errors.UndefinedObject(f'type "{".".join(names)}" does not exist')


def _check_relation(rv: ast.RangeVar, ctes: frozenset[str], relations: Callable[[str], bool]) -> None:
    """A relation named without a schema (or ``public``) must be a CTE in scope or one of
    the session's (its tables, temporary tables, reeldb's internal relations): never one
    of DuckDB's own views (``duckdb_settings``, ``sqlite_master``, ``pg_proc``), a file
    (DuckDB's replacement scans) or anything else DuckDB would find by that name."""
    if rv.catalogname is not None or rv.schemaname not in (None, "public"):
        return  # branches, tags, commits, pg_catalog: resolved by the session
    name = rv.relname
    if (rv.schemaname is None and name in ctes) or name.startswith("__") or relations(name):
        return
    raise errors.UndefinedTable(f'relation "{name}" does not exist')

"""The settings a client may SET, RESET and SHOW: an allow-list, in Postgres' terms.

Each name is one of:
- **honoured**: it changes what reeldb does (``statement_timeout``, the idle timeouts the
  server applies, ``reeldb.branch``, ``hnsw.ef_search``, the transaction defaults, ...), it
  is checked against what reeldb does (``search_path``: ``search_path()`` below) or it is
  only reported back (``application_name``);
- **fixed**: reeldb works one way (``TimeZone`` UTC, ``DateStyle`` ISO, ...): that value is
  accepted silently, another is accepted with a NOTICE saying it is not honoured and SHOW
  keeps reporting the value in force;
- **noted**: a Postgres setting with nothing to act on in reeldb (``work_mem``, ``jit``):
  stored and reported, with a NOTICE saying it has no effect;
- **read-only**, or reserved to a superuser or the server's configuration: refused as
  Postgres refuses it (55P02, 42501).
A value is checked as PostgreSQL checks it, with PostgreSQL's type, units and bounds for
the name (``pg_settings_data.py``), and kept in the form SHOW prints (``SET work_mem =
65536`` shows ``64MB``); ``pg_settings`` has the same rows with PostgreSQL's descriptions.
Names with a dot (``myapp.user_id``) are placeholders, as in Postgres: stored for SHOW and
``current_setting``, never read by reeldb. Anything else is 42704 ``unrecognized
configuration parameter``. No setting ever reaches DuckDB: its configuration is locked
(``enable_external_access`` and the rest are not names a client can SET).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from .. import errors
from .activity import WarningNotice
from .characteristics import Characteristics, as_settings, boolean, isolation
from .encodings import client_encoding
from .pg_settings_data import PG_SETTINGS
from .server_version import SERVER_VERSION, SERVER_VERSION_NUM

if TYPE_CHECKING:
    from .session import Session


# settings a client reads and cannot change (Postgres' "internal" ones, and reeldb's version)
READ_ONLY = {
    "server_version": SERVER_VERSION, "server_version_num": SERVER_VERSION_NUM, "server_encoding": "UTF8",
    "integer_datetimes": "on", "max_identifier_length": "63", "lc_collate": "C", "lc_ctype": "C",
    "is_superuser": "off", "block_size": "8192", "max_function_args": "100", "max_index_keys": "32",
    "in_hot_standby": "off", "data_checksums": "off", "segment_size": "1GB", "wal_block_size": "8192",
    "debug_assertions": "off",
}

# fixed: (the value in force, the spellings of it a client may SET without a notice)
_UTC = ("utc", "etc/utc", "gmt", "etc/gmt", "z", "zulu", "universal", "etc/universal", "0", "+0",
        "-0", "00:00", "+00:00", "interval '+00:00'", "local", "default")
FIXED: dict[str, tuple[str, tuple[str, ...]]] = {
    "timezone": ("UTC", _UTC),
    "datestyle": ("ISO, MDY", ("iso", "iso, mdy", "mdy, iso", "iso,mdy", "default")),
    "intervalstyle": ("postgres", ("postgres", "default")),
    "standard_conforming_strings": ("on", ("on", "true", "yes", "1", "default")),
    "bytea_output": ("hex", ("hex", "default")),
    "default_table_access_method": ("heap", ("heap", "default")),
    # every notice is sent: what a client asks at notice level or below
    "client_min_messages": ("notice", ("debug5", "debug4", "debug3", "debug2", "debug1", "debug", "log",
                                       "notice", "info", "default")),
}
SEARCH_PATH = '"$user", public'  # honoured: names resolve in public (``search_path`` below)

# honoured by reeldb: their values are checked (and acted on) by ``assign``
HONOURED_DEFAULTS = {
    "statement_timeout": "0", "client_encoding": "UTF8", "application_name": "",
    "reeldb.device": "cpu", "extra_float_digits": "1", "search_path": SEARCH_PATH,
    # the server closes a session idle this long (in a transaction / outside one)
    "idle_in_transaction_session_timeout": "0", "idle_session_timeout": "0",
}
_TRANSACTION = ("transaction_isolation", "transaction_read_only", "transaction_deferrable",
                "default_transaction_isolation", "default_transaction_read_only",
                "default_transaction_deferrable")

# noted: Postgres' user-settable settings reeldb has nothing to act on (default as Postgres')
NOTED = {
    "array_nulls": "on", "backend_flush_after": "0", "backslash_quote": "safe_encoding",
    "check_function_bodies": "on", "client_connection_check_interval": "0",
    "commit_siblings": "5", "constraint_exclusion": "partition", "cpu_index_tuple_cost": "0.005",
    "cpu_operator_cost": "0.0025", "cpu_tuple_cost": "0.01", "cursor_tuple_fraction": "0.1",
    "debug_pretty_print": "on", "debug_print_parse": "off", "debug_print_plan": "off",
    "debug_print_rewritten": "off", "default_statistics_target": "100", "default_tablespace": "",
    "default_text_search_config": "pg_catalog.english", "default_toast_compression": "pglz",
    "effective_cache_size": "4GB", "effective_io_concurrency": "1", "enable_async_append": "on",
    "enable_bitmapscan": "on", "enable_gathermerge": "on", "enable_hashagg": "on", "enable_hashjoin": "on",
    "enable_incremental_sort": "on", "enable_indexonlyscan": "on", "enable_indexscan": "on",
    "enable_material": "on", "enable_memoize": "on", "enable_mergejoin": "on", "enable_nestloop": "on",
    "enable_parallel_append": "on", "enable_parallel_hash": "on", "enable_partition_pruning": "on",
    "enable_partitionwise_aggregate": "off", "enable_partitionwise_join": "off", "enable_seqscan": "on",
    "enable_sort": "on", "enable_tidscan": "on", "escape_string_warning": "on", "exit_on_error": "off",
    "force_parallel_mode": "off", "from_collapse_limit": "8", "geqo": "on", "geqo_effort": "5",
    "geqo_generations": "0", "geqo_pool_size": "0", "geqo_seed": "0", "geqo_selection_bias": "2",
    "geqo_threshold": "12", "gin_fuzzy_search_limit": "0", "gin_pending_list_limit": "4MB",
    "hash_mem_multiplier": "2",
    "jit": "on", "jit_above_cost": "100000", "jit_expressions": "on", "jit_inline_above_cost": "500000",
    "jit_optimize_above_cost": "500000", "jit_tuple_deforming": "on", "join_collapse_limit": "8",
    "lc_monetary": "C", "lc_numeric": "C", "lc_time": "C", "lock_timeout": "0",
    "log_parameter_max_length_on_error": "0", "logical_decoding_work_mem": "64MB",
    "maintenance_io_concurrency": "10", "maintenance_work_mem": "64MB", "max_parallel_maintenance_workers": "2",
    "max_parallel_workers": "8", "max_parallel_workers_per_gather": "2", "min_parallel_index_scan_size": "512kB",
    "min_parallel_table_scan_size": "8MB", "parallel_leader_participation": "on", "parallel_setup_cost": "1000",
    "parallel_tuple_cost": "0.1", "password_encryption": "scram-sha-256", "plan_cache_mode": "auto",
    "quote_all_identifiers": "off", "random_page_cost": "4", "recursive_worktable_factor": "10",
    "row_security": "on", "seq_page_cost": "1", "stats_fetch_consistency": "cache",
    "synchronize_seqscans": "on", "synchronous_commit": "on", "tcp_keepalives_count": "0",
    "tcp_keepalives_idle": "0", "tcp_keepalives_interval": "0", "tcp_user_timeout": "0", "temp_buffers": "8MB",
    "temp_tablespaces": "", "timezone_abbreviations": "Default", "trace_notify": "off", "trace_sort": "off",
    "transform_null_equals": "off", "vacuum_cost_delay": "0", "vacuum_cost_limit": "200",
    "vacuum_cost_page_dirty": "20", "vacuum_cost_page_hit": "1", "vacuum_cost_page_miss": "2",
    "vacuum_failsafe_age": "1600000000", "vacuum_freeze_min_age": "50000000",
    "vacuum_freeze_table_age": "150000000", "vacuum_multixact_failsafe_age": "1600000000",
    "vacuum_multixact_freeze_min_age": "5000000", "vacuum_multixact_freeze_table_age": "150000000",
    "wal_sender_timeout": "1min", "wal_skip_threshold": "2MB", "work_mem": "4MB", "xmlbinary": "base64",
    "xmloption": "content",
}

def _names(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Postgres' settings only a superuser may change (no reeldb login is one: 42501), and those
# only the server's configuration may (55P02)
SUPERUSER = _names("""
allow_in_place_tablespaces allow_system_table_mods backtrace_functions commit_delay compute_query_id
deadlock_timeout debug_discard_caches dynamic_library_path extension_destdir ignore_checksum_failure
jit_dump_bitcode lc_messages lo_compat_privileges log_duration log_error_verbosity log_executor_stats
log_lock_waits log_min_duration_sample log_min_duration_statement log_min_error_statement log_min_messages
log_parameter_max_length log_parser_stats log_planner_stats log_replication_commands log_statement
log_statement_sample_rate log_statement_stats log_temp_files log_transaction_sample_rate max_stack_depth
session_preload_libraries session_replication_role temp_file_limit track_activities track_counts
track_functions track_io_timing track_wal_io_timing update_process_title wal_compression
wal_consistency_checking wal_init_zero wal_recycle zero_damaged_pages jit_debugging_support
jit_profiling_support log_connections log_disconnections local_preload_libraries
""")
SERVER_CONFIGURATION = _names("""
archive_mode autovacuum_freeze_max_age autovacuum_max_workers autovacuum_multixact_freeze_max_age bonjour
bonjour_name cluster_name config_file data_directory data_sync_retry dynamic_shared_memory_type
event_source external_pid_file hba_file hot_standby huge_page_size huge_pages ident_file
ignore_invalid_pages jit_provider listen_addresses logging_collector max_connections max_files_per_process
max_locks_per_transaction max_logical_replication_workers max_pred_locks_per_transaction
max_prepared_transactions max_replication_slots max_wal_senders max_worker_processes
min_dynamic_shared_memory old_snapshot_threshold port shared_buffers shared_memory_type
shared_preload_libraries superuser_reserved_connections track_activity_query_size track_commit_timestamp
unix_socket_directories unix_socket_group unix_socket_permissions wal_buffers wal_decode_buffer_size
wal_level wal_log_hints archive_cleanup_command archive_command archive_library archive_timeout
authentication_timeout autovacuum autovacuum_naptime autovacuum_work_mem bgwriter_delay checkpoint_timeout
fsync full_page_writes log_destination log_directory log_filename log_line_prefix log_timezone
max_wal_size min_wal_size ssl ssl_ca_file ssl_cert_file ssl_ciphers ssl_key_file ssl_min_protocol_version
ssl_max_protocol_version synchronous_standby_names wal_sync_method ignore_system_indexes post_auth_delay
""")
SHOWN_SERVER = {"max_connections": "100"}  # of those, what SHOW reports (the server sets its own)

# prefixes reeldb and pgvector own: an unknown name under one is an error, not a placeholder
RESERVED_PREFIXES = ("reeldb", "hnsw", "ivfflat")
_PLACEHOLDER = re.compile(r"^[a-z_][a-z0-9_$]*(\.[a-z_][a-z0-9_$]*)+$")


def current(s: Session) -> dict[str, str]:
    """What SHOW, ``current_setting`` and ``pg_settings`` report (names lower-case)."""
    from ..version import __version__
    from .vector_search import INT_SETTINGS

    out = dict(NOTED)
    out.update(HONOURED_DEFAULTS)
    out.update({name: str(default) for name, (default, _, _) in INT_SETTINGS.items()})
    out.update(s.server_settings)
    out.update({name: value for name, (value, _) in FIXED.items()})
    out.update(READ_ONLY)
    out["reeldb.version"] = __version__
    out.update(s.settings)  # what the session SET (placeholders included)
    out["statement_timeout"] = show_integer(s.statement_timeout_ms, "ms")
    out["reeldb.branch"] = s.branch or s.pinned or ""
    out["session_authorization"], out["role"] = s.user, "none"
    out.update(as_settings(s.characteristics, s.default_characteristics))
    if s.rights.read_only:
        out["transaction_read_only"] = out["default_transaction_read_only"] = "on"
    return out


def known(name: str) -> bool:
    """Is ``name`` a setting reeldb reports (before any SET)?"""
    return (name in NOTED or name in HONOURED_DEFAULTS or name in FIXED or name in READ_ONLY
            or name in SHOWN_SERVER or name in _TRANSACTION
            or name in ("reeldb.branch", "reeldb.version", "hnsw.ef_search", "ivfflat.probes", "role",
                        "session_authorization"))


def assign(s: Session, name: str, value: str | None, original: str, local: bool = False) -> None:
    """``SET name = value`` (``value`` None: RESET / SET ... TO DEFAULT) for the names the
    session does not handle itself; refuses what may not be set, notes what is not
    honoured. ``original`` is the name as the client spelled it, for messages. ``local``:
    SET LOCAL, undone at the end of the transaction (``Undo``)."""
    _settable(name, original)
    if local:
        if s.txn is None:
            s.notice(WarningNotice("SET LOCAL can only be used in transaction blocks"))
            return
        s.settings_undo.set_local(s, name)
    else:
        s.settings_undo.set_plain(name)
    if name in _TRANSACTION:
        _transaction(s, name, value)
        return
    if name in ("role", "session_authorization"):  # a login is one role: only itself
        if value is not None and value.lower() not in ("none", "default") and value != s.user:
            raise errors.InsufficientPrivilege(f'permission denied to set {name.replace("_", " ")} "{value}"')
        return
    if value is None:
        s.settings.pop(name, None)
        if name == "statement_timeout":
            s.statement_timeout_ms = server_timeout_ms(s)
        return
    if name in FIXED:
        in_force, spellings = FIXED[name]
        spelled = " ".join(value.lower().split())
        if spelled not in spellings:
            s.notice(f"SET {original} = {value} is not honoured: reeldb keeps {original} at {in_force}")
            return
        if spelled in ("default", "local"):
            s.settings.pop(name, None)
            return
    if name in NOTED:
        value = checked(name, value, original)
        s.notice(f'parameter "{original}" has no effect in reeldb: the value is stored and reported only')
    elif "." in name and name not in ("reeldb.device", "hnsw.ef_search", "ivfflat.probes"):
        pass  # a placeholder: kept for SHOW and current_setting
    else:
        value = _honoured(s, name, value, original)
        if value is None:
            return
    s.settings[name] = value


def _settable(name: str, original: str) -> None:
    if name in READ_ONLY or name == "reeldb.version":
        raise errors.ObjectNotInPrerequisiteState(f'parameter "{original}" cannot be changed', sqlstate="55P02")
    if name in SERVER_CONFIGURATION:
        raise errors.ObjectNotInPrerequisiteState(
            f'parameter "{original}" cannot be changed without restarting the server', sqlstate="55P02")
    if name in SUPERUSER:
        raise errors.InsufficientPrivilege(f'permission denied to set parameter "{original}"')
    if known(name):
        return
    prefix = name.partition(".")[0]
    if "." in name and prefix in RESERVED_PREFIXES:
        raise errors.ProgrammingError(f'invalid configuration parameter name "{original}": '
                                      f'"{prefix}" is a reserved prefix', sqlstate="42602")
    if "." in name and _PLACEHOLDER.match(name):
        return
    raise errors.UndefinedObject(f'unrecognized configuration parameter "{original}"')


def _honoured(s: Session, name: str, value: str, original: str) -> str | None:
    """The value to store for an honoured setting (checked, acted on); None: nothing to store."""
    if name == "client_encoding":  # the wire server converts text with it
        return client_encoding(value, original)
    if name == "statement_timeout":
        s.statement_timeout_ms = base_value(name, checked(name, value, original))
        return None
    if name in ("idle_in_transaction_session_timeout", "idle_session_timeout"):
        return checked(name, value, original)  # the server reads it back (idle_timeouts_ms)
    if name == "search_path":
        return search_path(s, value)
    if name == "reeldb.device":
        from ..index.device import usable

        return usable(value)
    if name in ("hnsw.ef_search", "ivfflat.probes"):
        from .vector_search import int_setting

        return str(int_setting(name, value))
    if name == "extra_float_digits":
        try:
            digits = int(value)
        except ValueError:
            raise errors.InvalidParameterValue(f'invalid value for parameter "{original}": "{value}"') from None
        if not -15 <= digits <= 3:
            raise errors.InvalidParameterValue(
                f'{digits} is outside the valid range for parameter "{original}" (-15 .. 3)')
        if digits < 1:  # reeldb always sends the shortest exact digits (Postgres' >= 1)
            s.notice(f'reeldb keeps {original} at 1 (shortest exact output): SET {original} = {digits} '
                     "is not honoured")
        return str(digits)
    return value  # application_name: reported back


def _transaction(s: Session, name: str, value: str | None) -> None:
    """The transaction_* settings are SET TRANSACTION; default_transaction_* the session's
    defaults (SET SESSION CHARACTERISTICS)."""
    which = name.removeprefix("default_").removeprefix("transaction_")
    if value is None:
        new: Any = getattr(Characteristics(), which)
    elif which == "isolation":
        new = isolation(value)
    else:
        new = boolean(name, value)
    if name.startswith("default_"):
        s.default_characteristics = replace(s.default_characteristics, **{which: new})
    elif s.txn is None:
        if value is not None:
            s.notice("SET TRANSACTION can only be used in transaction blocks")
    else:
        s.txn_characteristics = replace(s.characteristics, **{which: new})


def reported_settings(s: Session) -> dict[str, str]:
    """The settings PostgreSQL reports to the client (ParameterStatus) whenever they change
    and that a session can change here; the others (DateStyle, TimeZone, ...) are fixed.
    Read around every message batch: only dictionary lookups."""
    return {"application_name": s.settings.get("application_name", s.server_settings.get("application_name", "")),
            "client_encoding": s.settings.get("client_encoding", s.server_settings.get("client_encoding", "UTF8"))}


# -- the startup packet ---------------------------------------------------------------------
_NOT_SETTINGS = ("user", "database", "options", "replication")


def apply_startup(s: Session, params: dict[str, str]) -> None:
    """The settings a client sends when it connects — parameters of the startup packet
    (``application_name``, ``DateStyle``) and libpq's ``options`` (``-c name=value``,
    ``--name=value``) — checked and applied as SET, as PostgreSQL applies them: they are
    what RESET goes back to (pg_settings' source ``client``). An error refuses the login."""
    pairs = [(key, value) for key, value in params.items()
             if key not in _NOT_SETTINGS and not key.startswith("_pq_.")]  # _pq_.: protocol options
    pairs += _options(params.get("options", ""))
    for original, value in pairs:
        name = original.lower()
        if name == "reeldb.branch":
            raise errors.FeatureNotSupported(
                "reeldb.branch cannot be set when connecting: name the branch in the database (NAME/BRANCH)")
        assign(s, name, value, original)
    s.server_settings.update(s.settings)  # the session's defaults from now on
    s.settings.clear()
    s.server_settings["statement_timeout"] = show_integer(s.statement_timeout_ms, "ms")


def _options(text: str) -> list[tuple[str, str]]:
    """libpq's ``options``: words split at unescaped spaces (``\\`` escapes), each ``-c
    name=value``, ``-cname=value`` or ``--name=value`` (``-`` in a name is ``_``)."""
    words, word, escaped, started = [], [], False, False
    for ch in text:
        if escaped:
            word.append(ch)
            escaped, started = False, True
        elif ch == "\\":
            escaped = True
        elif ch.isspace():
            if started:
                words.append("".join(word))
            word, started = [], False
        else:
            word.append(ch)
            started = True
    if started:
        words.append("".join(word))
    pairs, i = [], 0
    while i < len(words):
        w = words[i]
        if w == "-c" and i + 1 < len(words):
            setting, i = words[i + 1], i + 2
        elif w.startswith(("-c", "--")) and len(w) > 2:
            setting, i = w[2:], i + 1
        else:
            raise errors.SyntaxError(f"invalid command-line argument for server process: {w}")
        name, eq, value = setting.partition("=")
        if not eq:
            raise errors.SyntaxError(f"-c {setting} requires a value")
        pairs.append((name.replace("-", "_"), value))
    return pairs


# -- settings are transactional, as in PostgreSQL -------------------------------------------
_Snapshot = tuple[dict[str, str], int, Characteristics]


def _snapshot(s: Session) -> _Snapshot:
    return dict(s.settings), s.statement_timeout_ms, s.default_characteristics


def _restore(s: Session, snap: _Snapshot, name: str | None = None) -> None:
    """Put back what ``snap`` had: every setting, or only ``name``."""
    values, timeout_ms, defaults = snap
    if name is None:
        s.settings.clear()
        s.settings.update(values)
        s.statement_timeout_ms, s.default_characteristics = timeout_ms, defaults
    elif name == "statement_timeout":
        s.statement_timeout_ms = timeout_ms
    elif name.startswith("default_transaction_"):
        which = name.removeprefix("default_transaction_")
        s.default_characteristics = replace(s.default_characteristics, **{which: getattr(defaults, which)})
    elif name in values:
        s.settings[name] = values[name]
    else:
        s.settings.pop(name, None)


class Undo:
    """What SET did in the open transaction, undone as PostgreSQL undoes it: ROLLBACK (or a
    failed transaction's COMMIT) puts back the settings of BEGIN, ROLLBACK TO those of the
    savepoint; COMMIT keeps them, except that a name SET LOCAL goes back to its value
    before its first SET LOCAL (unless a plain SET came after)."""

    def __init__(self) -> None:
        self._at_begin: _Snapshot | None = None
        self._local: dict[str, _Snapshot] = {}

    def begin(self, s: Session) -> None:
        self._at_begin, self._local = _snapshot(s), {}

    def end(self, s: Session, committed: bool) -> None:
        if self._at_begin is None:
            return
        if committed:
            for name, snap in self._local.items():
                _restore(s, snap, name)
        else:
            _restore(s, self._at_begin)
        self._at_begin, self._local = None, {}

    def set_local(self, s: Session, name: str) -> None:
        self._local.setdefault(name, _snapshot(s))

    def set_plain(self, name: str) -> None:
        self._local.pop(name, None)

    def savepoint(self, s: Session) -> tuple[_Snapshot, dict[str, _Snapshot]]:
        return _snapshot(s), dict(self._local)

    def rollback_to(self, s: Session, state: tuple[_Snapshot, dict[str, _Snapshot]]) -> None:
        _restore(s, state[0])
        self._local = dict(state[1])


def reset_all(s: Session) -> None:
    """RESET ALL: every setting back to its default (the branch stays: it is the connection's)."""
    s.settings.clear()
    s.statement_timeout_ms = server_timeout_ms(s)
    s.default_characteristics = Characteristics()


# -- PostgreSQL's types, units and bounds (pg_settings_data) ---------------------------------
_MEMORY_UNITS = {"TB": 1024**4, "GB": 1024**3, "MB": 1024**2, "kB": 1024, "B": 1}  # in bytes
_TIME_UNITS = {"d": 86_400_000_000, "h": 3_600_000_000, "min": 60_000_000, "s": 1_000_000, "ms": 1000,
               "us": 1}  # in microseconds
_BASE_UNITS = {"8kB": 8192, **_MEMORY_UNITS, **_TIME_UNITS}


def _units_of(base: str) -> dict[str, int]:
    return _MEMORY_UNITS if base in _MEMORY_UNITS or base == "8kB" else _TIME_UNITS


def show_integer(value: float, base: str | None, real: bool = False) -> str:
    """A value in its base unit as SHOW prints it (PostgreSQL's rule): in the largest
    unit that keeps it a whole number, ``5000`` ms as ``5s``; 0 and negatives bare."""
    if base is None or value <= 0:
        return _number(value, real)
    units = _units_of(base)
    amount = value * _BASE_UNITS[base]  # bytes or microseconds
    smallest = list(units)[-1]
    for unit, size in units.items():
        if not real and (size <= _BASE_UNITS[base] or amount % size == 0):
            return f"{round(amount / size)}{unit}"
        converted = amount / size
        if real and (abs(round(converted) / converted - 1.0) <= 1e-8 or unit == smallest):
            return f"{converted:g}{unit}"
    return _number(value, real)


def _number(value: float, real: bool) -> str:
    if real:
        return f"{value:g}"
    return str(int(value))


_VALUE = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*([A-Za-z]*)\s*$")


def base_value(name: str, value: str, original: str | None = None) -> float:
    """A numeric setting's value in its base unit (``4MB`` of work_mem: 4096), as
    pg_settings' ``setting`` column has it; 22023 for a value that is not one."""
    meta = PG_SETTINGS[name]
    unit, vartype = meta[1], meta[6]
    invalid = f'invalid value for parameter "{original or name}": "{value}"'
    m = _VALUE.match(value)
    if m is None:
        raise errors.InvalidParameterValue(invalid)
    number, given = float(m.group(1)), m.group(2)
    if given:
        if unit is None or given not in _units_of(unit):
            units = ", ".join(f'"{u}"' for u in _units_of(unit)) if unit else None
            raise errors.InvalidParameterValue(
                invalid + (f" (valid units for this parameter are {units})" if units else ""))
        number = number * _units_of(unit)[given] / _BASE_UNITS[unit]
    return round(number) if vartype == "integer" else number


def checked(name: str, value: str, original: str) -> str:
    """``value`` for setting ``name`` checked as PostgreSQL checks it (its type, units,
    bounds, enum values; 22023 otherwise), in the form SHOW prints it."""
    meta = PG_SETTINGS.get(name)
    if meta is None:
        return value
    unit, vartype, low, high, enumvals = meta[1], meta[6], meta[7], meta[8], meta[9]
    if vartype == "bool":
        return "on" if boolean(original, value) else "off"
    if vartype == "enum":
        for allowed in enumvals or ():
            if allowed.lower() == value.strip().lower():
                return allowed
        raise errors.InvalidParameterValue(f'invalid value for parameter "{original}": "{value}" '
                                           f"(available values: {', '.join(enumvals or ())})")
    if vartype in ("integer", "real"):
        number = base_value(name, value, original)
        real = vartype == "real"
        if not float(low) <= number <= float(high):
            space = " " if unit else ""
            raise errors.InvalidParameterValue(
                f"{_number(number, real)}{space}{unit or ''} is outside the valid range for parameter "
                f'"{original}" ({_number(float(low), real)} .. {_number(float(high), real)})')
        return show_integer(number, unit, real)
    return value


def idle_timeouts_ms(s: Session) -> tuple[int, int]:
    """(idle_in_transaction_session_timeout, idle_session_timeout) in milliseconds (0:
    none): the server closes a session idle longer, with 25P03 / 57P05 as PostgreSQL."""
    def ms(name: str) -> int:  # read at every idle wait: the session's value, its startup one, else none
        value = s.settings.get(name) or s.server_settings.get(name, "0")
        return 0 if value == "0" else int(base_value(name, value))

    return ms("idle_in_transaction_session_timeout"), ms("idle_session_timeout")


# -- search_path ------------------------------------------------------------------------------
def search_path(s: Session, value: str) -> str:
    """``SET search_path``: accepted when resolving names by it gives what reeldb does
    (unqualified names are the connection's branch, ``public``): ``public`` is on it and
    no other schema the login can see is. Schemas that do not exist are skipped, as
    PostgreSQL skips them. Anything else is 0A000, naming the schema."""
    names = [part.strip() for part in value.split(",") if part.strip()]
    plain = [n[1:-1].replace('""', '"') if n.startswith('"') and n.endswith('"') else n for n in names]
    visible = {nm for _, nm in s.pg.tables().namespaces}
    for name in plain:
        if name in ("public", "pg_catalog", "pg_temp") or (name == "$user" and s.user not in visible):
            continue
        if name == "$user":
            name = s.user  # a schema named as the user: PostgreSQL would look there
        if name in visible or name == "information_schema" or (
                s.rights.may_name(name) and s.catalog.refs.tag(name) is not None):
            raise errors.FeatureNotSupported(
                f'SET search_path = {value} is not supported: unqualified names resolve in "public" '
                "(the connection's branch) only; name the schema instead "
                f'("{name}".table), or '
                f"SET reeldb.branch = '{name}' to work on that branch")
    if "public" not in plain:
        raise errors.FeatureNotSupported(
            f'SET search_path = {value} is not supported: unqualified names resolve in "public" '
            "(the connection's branch), which the path must include")
    if "pg_catalog" in plain and plain.index("pg_catalog") > plain.index("public"):
        raise errors.FeatureNotSupported(
            f'SET search_path = {value} is not supported: reeldb looks in "pg_catalog" before "public"')
    return ", ".join(_quoted(n) for n in plain)


def _quoted(name: str) -> str:
    if re.fullmatch(r"[a-z_][a-z0-9_$]*", name):
        return name
    return '"' + name.replace('"', '""') + '"'


# -- pg_settings ------------------------------------------------------------------------------
_REELDB_SETTINGS = {  # reeldb's and pgvector's own, described as PG_SETTINGS describes the rest
    "reeldb.branch": ("reeldb.branch", None, "Customized Options", "The branch, tag or commit this connection "
                      "reads and writes (public).", None, "user", "string", None, None, None, "main"),
    "reeldb.version": ("reeldb.version", None, "Preset Options", "The reeldb release.", None, "internal",
                       "string", None, None, None, None),
    "reeldb.device": ("reeldb.device", None, "Customized Options", "The device vector search runs on.", None,
                      "user", "string", None, None, None, "cpu"),
    "hnsw.ef_search": ("hnsw.ef_search", None, "Customized Options",
                       "Sets the size of the dynamic candidate list for search", "Valid range is 1..1000.",
                       "user", "integer", "1", "1000", None, "40"),
    "ivfflat.probes": ("ivfflat.probes", None, "Customized Options", "Sets the number of probes",
                       "Valid range is 1..lists.", "user", "integer", "1", "32768", None, "1"),
}
_PG_SETTINGS_TYPES = {
    "name": pa.string(), "setting": pa.string(), "unit": pa.string(), "category": pa.string(),
    "short_desc": pa.string(), "extra_desc": pa.string(), "context": pa.string(), "vartype": pa.string(),
    "source": pa.string(), "min_val": pa.string(), "max_val": pa.string(), "enumvals": pa.list_(pa.string()),
    "boot_val": pa.string(), "reset_val": pa.string(), "sourcefile": pa.string(), "sourceline": pa.int32(),
    "pending_restart": pa.bool_()}


def pg_settings(s: Session, values: dict[str, str]) -> pa.Table:
    """The ``pg_settings`` view: a row per setting reeldb reports that PostgreSQL lists
    there (placeholders and the hidden ones, such as ``is_superuser``, it does not),
    with PostgreSQL's descriptions; ``setting`` in the base unit, as SHOW's value."""
    rows = []
    for name in sorted(values):  # PostgreSQL's order: by name, whatever its case
        meta = PG_SETTINGS.get(name) or _REELDB_SETTINGS.get(name)
        if meta is None or name in _HIDDEN:
            continue
        spelled, unit, category, short, extra, context, vartype, low, high, enumvals, boot = meta
        builtin = _default(name)
        boot = builtin if builtin is not None else boot
        reset = s.server_settings.get(name, boot)
        if name in s.settings or (name == "statement_timeout" and s.statement_timeout_ms != server_timeout_ms(s)):
            source = "session"
        elif name in s.server_settings and s.server_settings[name] != boot:
            # reeldb serve's flags (--max-connections, --statement-timeout), else the startup packet's
            source = "command line" if name in ("max_connections", "statement_timeout") else "client"
        else:
            source = "default"
        value = values[name]
        if name == "reeldb.branch":  # the connection's own: what it connected to
            boot = reset = value
        if unit is not None:
            value, boot, reset = (None if v is None else _setting_text(name, v) for v in (value, boot, reset))
        if context == "internal" and low is not None and low == high:  # fixed at build: its own bounds
            low = high = value
        if name in ("transaction_isolation", "default_transaction_isolation"):
            enumvals = tuple(v for v in enumvals if v != "serializable")  # refused: not offered
        rows.append({"name": spelled, "setting": value, "unit": unit, "category": category, "short_desc": short,
                     "extra_desc": extra, "context": context, "vartype": vartype, "source": source,
                     "min_val": low, "max_val": high, "enumvals": list(enumvals) if enumvals else None,
                     "boot_val": boot, "reset_val": reset, "pending_restart": False})
    return pa.table({c: pa.array([r.get(c) for r in rows], t) for c, t in _PG_SETTINGS_TYPES.items()})


def show_all(s: Session) -> pa.Table:
    """SHOW ALL: name, setting (as SHOW prints it) and description of each setting
    ``pg_settings`` lists, in its order (placeholders and hidden ones left out, as in
    PostgreSQL)."""
    values = current(s)
    names = [n for n in sorted(values) if n not in _HIDDEN and (n in PG_SETTINGS or n in _REELDB_SETTINGS)]
    meta = [PG_SETTINGS.get(n) or _REELDB_SETTINGS[n] for n in names]
    return pa.table({"name": [m[0] for m in meta], "setting": [values[n] for n in names],
                     "description": [m[3] for m in meta]})


_HIDDEN = frozenset(("role", "session_authorization", "is_superuser", "lc_collate", "lc_ctype"))


def _setting_text(name: str, value: str) -> str:
    try:
        number = base_value(name, value)
    except errors.InvalidParameterValue:  # not a number (stored before it was checked)
        return value
    return _number(number, PG_SETTINGS[name][6] == "real")


def server_timeout_ms(s: Session) -> int:
    """The statement_timeout a session starts with and RESET goes back to (the server's
    ``--statement-timeout``), in milliseconds."""
    return int(base_value("statement_timeout", s.server_settings.get("statement_timeout", "0")))


def _default(name: str) -> str | None:
    """reeldb's value for ``name`` before any SET (None: the session's, such as its branch)."""
    from .vector_search import INT_SETTINGS

    if name in READ_ONLY:
        return READ_ONLY[name]
    if name in FIXED:
        return FIXED[name][0]
    if name in HONOURED_DEFAULTS:
        return HONOURED_DEFAULTS[name]
    if name in NOTED:
        return NOTED[name]
    if name in INT_SETTINGS:
        return str(INT_SETTINGS[name][0])
    if name in SHOWN_SERVER:
        return SHOWN_SERVER[name]
    return {"transaction_isolation": "repeatable read", "default_transaction_isolation": "repeatable read"}.get(
        name, "off" if name.startswith(("transaction_", "default_transaction_")) else None)

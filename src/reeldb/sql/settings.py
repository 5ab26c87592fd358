"""The settings a client may SET, RESET and SHOW: an allow-list, in Postgres' terms.

Each name is one of:
- **honoured**: it changes what reeldb does (``statement_timeout``, ``reeldb.branch``,
  ``hnsw.ef_search``, the transaction defaults, ...) or it is only reported back
  (``application_name``);
- **fixed**: reeldb works one way (``TimeZone`` UTC, ``DateStyle`` ISO, ...): that value is
  accepted silently, another is accepted with a NOTICE saying it is not honoured and SHOW
  keeps reporting the value in force;
- **noted**: a Postgres setting with nothing to act on in reeldb (``work_mem``, ``jit``):
  stored and reported, with a NOTICE saying it has no effect;
- **read-only**, or reserved to a superuser or the server's configuration: refused as
  Postgres refuses it (55P02, 42501).
Names with a dot (``myapp.user_id``) are placeholders, as in Postgres: stored for SHOW and
``current_setting``, never read by reeldb. Anything else is 42704 ``unrecognized
configuration parameter``. No setting ever reaches DuckDB: its configuration is locked
(``enable_external_access`` and the rest are not names a client can SET).
"""

from __future__ import annotations

import re
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .. import errors
from .characteristics import Characteristics, as_settings, boolean, isolation
from .encodings import client_encoding
from .pgcatalog import SERVER_VERSION, SERVER_VERSION_NUM

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
    "search_path": ('"$user", public', ('"$user", public', "public", "$user, public", "public, \"$user\"",
                                        "pg_catalog, public", "public, pg_catalog", "default")),
}

# honoured by reeldb: their values are checked (and acted on) by ``assign``
HONOURED_DEFAULTS = {
    "statement_timeout": "0", "client_encoding": "UTF8", "application_name": "",
    "reeldb.device": "cpu", "extra_float_digits": "1",
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
    "hash_mem_multiplier": "2", "idle_in_transaction_session_timeout": "0", "idle_session_timeout": "0",
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
    from .. import __version__
    from .vector_search import INT_SETTINGS

    out = dict(NOTED)
    out.update(HONOURED_DEFAULTS)
    out.update({name: str(default) for name, (default, _, _) in INT_SETTINGS.items()})
    out.update(s.server_settings)
    out.update({name: value for name, (value, _) in FIXED.items()})
    out.update(READ_ONLY)
    out["reeldb.version"] = __version__
    out.update(s.settings)  # what the session SET (placeholders included)
    out["statement_timeout"] = str(s.statement_timeout_ms)
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


def assign(s: Session, name: str, value: str | None, original: str) -> None:
    """``SET name = value`` (``value`` None: RESET / SET ... TO DEFAULT) for the names the
    session does not handle itself; refuses what may not be set, notes what is not
    honoured. ``original`` is the name as the client spelled it, for messages."""
    _settable(name, original)
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
            s.statement_timeout_ms = 0
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
        from .session import parse_duration_ms

        s.statement_timeout_ms = parse_duration_ms(value)
        return None
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


def reset_all(s: Session) -> None:
    """RESET ALL: every setting back to its default (the branch stays: it is the connection's)."""
    s.settings.clear()
    s.statement_timeout_ms = 0
    s.default_characteristics = Characteristics()

"""The catalog's schema, one migration per version.

Append-only: a released migration is never edited, because stores made with it exist;
a change to the schema is the next migration and ``SCHEMA_VERSION`` goes up by one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import duckdb

SCHEMA_VERSION = 14
ANCHORED_SINCE = 7  # from this version on, audit.head exists beside the catalog


def _migration_1(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(
        """
        CREATE TABLE wb_meta (key VARCHAR PRIMARY KEY, value VARCHAR);
        CREATE TABLE objects (
            hash VARCHAR PRIMARY KEY, size BIGINT NOT NULL, kind VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL);
        CREATE TABLE datasets (
            name VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, chunk_rows BIGINT NOT NULL);
        CREATE TABLE dataset_versions (
            dataset VARCHAR NOT NULL, number INTEGER NOT NULL, id VARCHAR NOT NULL,
            created_at TIMESTAMP NOT NULL, message VARCHAR, source_name VARCHAR,
            source_format VARCHAR, source_bytes BIGINT, n_rows BIGINT NOT NULL,
            n_cols INTEGER NOT NULL, stored_bytes BIGINT NOT NULL, total_bytes BIGINT NOT NULL,
            parent INTEGER, schema JSON NOT NULL, schema_changes JSON, profile JSON NOT NULL,
            PRIMARY KEY (dataset, number), UNIQUE (dataset, id));
        CREATE TABLE dataset_segments (
            dataset VARCHAR NOT NULL, number INTEGER NOT NULL, seq INTEGER NOT NULL,
            n_rows BIGINT NOT NULL, blob VARCHAR NOT NULL, patches VARCHAR[] NOT NULL,
            PRIMARY KEY (dataset, number, seq));
        CREATE TABLE audit (
            seq BIGINT PRIMARY KEY, ts TIMESTAMP NOT NULL, actor VARCHAR NOT NULL,
            action VARCHAR NOT NULL, subject VARCHAR NOT NULL, details JSON NOT NULL,
            prev_hash VARCHAR NOT NULL, hash VARCHAR NOT NULL);
        """
    )


def _migration_2(con: duckdb.DuckDBPyConnection) -> None:
    """Experiment tracking: runs with params, tags, metric points and artifacts."""
    con.execute(
        """
        CREATE TABLE experiments (name VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL);
        CREATE TABLE runs (
            id VARCHAR PRIMARY KEY, experiment VARCHAR NOT NULL, name VARCHAR,
            status VARCHAR NOT NULL, error VARCHAR, start_time TIMESTAMP NOT NULL,
            end_time TIMESTAMP, host VARCHAR, pid INTEGER, dataset VARCHAR,
            dataset_version INTEGER, parent_id VARCHAR, deleted_at TIMESTAMP,
            environment JSON, source VARCHAR);
        CREATE TABLE params (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR,
            PRIMARY KEY (run_id, key));
        CREATE TABLE tags (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, value VARCHAR,
            PRIMARY KEY (run_id, key));
        CREATE TABLE metrics (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL, step BIGINT NOT NULL,
            value DOUBLE, ts TIMESTAMP NOT NULL);
        CREATE TABLE metric_summary (run_id VARCHAR NOT NULL, key VARCHAR NOT NULL,
            last DOUBLE, last_step BIGINT, min DOUBLE, max DOUBLE, mean DOUBLE, count BIGINT,
            PRIMARY KEY (run_id, key));
        CREATE TABLE artifacts (run_id VARCHAR NOT NULL, path VARCHAR NOT NULL,
            hash VARCHAR NOT NULL, size BIGINT NOT NULL, kind VARCHAR NOT NULL,
            PRIMARY KEY (run_id, path));
        """
    )


def _migration_3(con: duckdb.DuckDBPyConnection) -> None:
    """Drift reports: one row per comparison, one per column finding."""
    con.execute(
        """
        CREATE TABLE drift_reports (
            id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL,
            reference VARCHAR NOT NULL, reference_id VARCHAR,
            current VARCHAR NOT NULL, current_id VARCHAR, options JSON NOT NULL,
            drift_share DOUBLE NOT NULL, n_tested INTEGER NOT NULL, n_drifted INTEGER NOT NULL,
            share DOUBLE NOT NULL, drifted BOOLEAN NOT NULL, series_id VARCHAR);
        CREATE TABLE drift_results (
            report_id VARCHAR NOT NULL, pos INTEGER NOT NULL, column_name VARCHAR NOT NULL,
            kind VARCHAR NOT NULL, status VARCHAR NOT NULL, reason VARCHAR NOT NULL,
            method VARCHAR, statistic DOUBLE, p_value DOUBLE, threshold DOUBLE, drifted BOOLEAN,
            ref_dtype VARCHAR, cur_dtype VARCHAR, ref_count BIGINT, cur_count BIGINT,
            ref_null_share DOUBLE, cur_null_share DOUBLE, notes JSON NOT NULL, plot JSON,
            PRIMARY KEY (report_id, pos));
        """
    )


def _migration_4(con: duckdb.DuckDBPyConnection) -> None:
    """The model registry: versions, aliases and their history, and batch scorings."""
    con.execute(
        """
        CREATE TABLE models (name VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL,
            description VARCHAR);
        CREATE TABLE model_versions (
            model VARCHAR NOT NULL, version INTEGER NOT NULL, run_id VARCHAR NOT NULL,
            artifact VARCHAR NOT NULL, signature JSON, metrics JSON NOT NULL,
            params JSON NOT NULL, dataset VARCHAR, dataset_version INTEGER, description VARCHAR,
            status VARCHAR NOT NULL, created_at TIMESTAMP NOT NULL,
            PRIMARY KEY (model, version));
        CREATE TABLE model_aliases (model VARCHAR NOT NULL, alias VARCHAR NOT NULL,
            version INTEGER NOT NULL, since TIMESTAMP NOT NULL, PRIMARY KEY (model, alias));
        CREATE TABLE alias_history (
            model VARCHAR NOT NULL, alias VARCHAR NOT NULL, seq INTEGER NOT NULL,
            ts TIMESTAMP NOT NULL, action VARCHAR NOT NULL, version INTEGER NOT NULL,
            previous INTEGER, reason VARCHAR, forced BOOLEAN NOT NULL, gates JSON,
            actor VARCHAR NOT NULL, PRIMARY KEY (model, alias, seq));
        CREATE TABLE scorings (
            id VARCHAR PRIMARY KEY, ts TIMESTAMP NOT NULL, model VARCHAR NOT NULL,
            version INTEGER NOT NULL, input VARCHAR NOT NULL, input_id VARCHAR,
            n_rows BIGINT NOT NULL, output VARCHAR, distribution JSON NOT NULL);
        """
    )


def _migration_5(con: duckdb.DuckDBPyConnection) -> None:
    """Data checks: every run of a dataset's expectations, on add and on demand."""
    con.execute(
        """
        CREATE TABLE dataset_checks (
            dataset VARCHAR NOT NULL, number INTEGER NOT NULL, checked_at TIMESTAMP NOT NULL,
            passed BOOLEAN NOT NULL, report JSON NOT NULL);
        """
    )


def _migration_6(con: duckdb.DuckDBPyConnection) -> None:
    """Continuous training: one row per run of a declared pipeline, with its steps."""
    con.execute(
        """
        CREATE TABLE pipeline_runs (
            id VARCHAR PRIMARY KEY, pipeline VARCHAR NOT NULL, batch VARCHAR NOT NULL,
            batch_hash VARCHAR NOT NULL, started_at TIMESTAMP NOT NULL, ended_at TIMESTAMP,
            outcome VARCHAR NOT NULL, steps JSON NOT NULL);
        """
    )


def _migration_7(con: duckdb.DuckDBPyConnection) -> None:
    """No table changes: from here on the audit trail's head is anchored in a file
    outside the catalog, which ``Catalog.migrate`` writes once this has committed."""


def _migration_8(con: duckdb.DuckDBPyConnection) -> None:
    """A fast checksum (XXH3-128) of each dataset chunk and patch, recorded when it is
    stored, so that every read can check its bytes for a few per cent of the read's time
    (SHA-256, the object's name, costs a third of it; ``verify`` still uses SHA-256)."""
    con.execute("CREATE TABLE object_sums (hash VARCHAR PRIMARY KEY, xxh3 VARCHAR NOT NULL)")


def _migration_9(con: duckdb.DuckDBPyConnection) -> None:
    """Serving: what a served model was asked and answered, folded in from the servers'
    own log files (core/models/prediction_log.py), and how far each file is folded."""
    con.execute(
        """
        CREATE TABLE serving_requests (
            id VARCHAR NOT NULL, ts TIMESTAMP NOT NULL, model VARCHAR, version INTEGER,
            rows BIGINT NOT NULL, latency_ms DOUBLE NOT NULL, status INTEGER NOT NULL,
            error VARCHAR, path VARCHAR, log VARCHAR NOT NULL);
        CREATE TABLE predictions (
            request_id VARCHAR NOT NULL, row INTEGER NOT NULL, ts TIMESTAMP NOT NULL,
            model VARCHAR NOT NULL, version INTEGER NOT NULL, inputs JSON NOT NULL,
            outputs JSON NOT NULL);
        CREATE TABLE prediction_logs (
            file VARCHAR PRIMARY KEY, folded_bytes BIGINT NOT NULL, folded_at TIMESTAMP NOT NULL);
        """
    )


def _migration_10(con: duckdb.DuckDBPyConnection) -> None:
    """Ground truth for logged predictions, added when it arrives (core/models/labels.py)."""
    con.execute(
        """
        CREATE TABLE labels (
            model VARCHAR NOT NULL, request_id VARCHAR NOT NULL, row INTEGER NOT NULL,
            label JSON NOT NULL, added_at TIMESTAMP NOT NULL, source VARCHAR,
            PRIMARY KEY (model, request_id, row));
        """
    )


def _migration_11(con: duckdb.DuckDBPyConnection) -> None:
    """Monitoring (core/monitor/): a report per ``workbench monitor``, one row per window
    of logged predictions (its input drift is a drift report of its own)."""
    con.execute(
        """
        CREATE TABLE monitor_reports (
            id VARCHAR PRIMARY KEY, created_at TIMESTAMP NOT NULL, model VARCHAR NOT NULL,
            version INTEGER NOT NULL, alias VARCHAR, window_spec VARCHAR NOT NULL,
            since TIMESTAMP, reference VARCHAR NOT NULL, body JSON NOT NULL);
        CREATE TABLE monitor_windows (
            report_id VARCHAR NOT NULL, pos INTEGER NOT NULL, label VARCHAR NOT NULL,
            first_ts TIMESTAMP NOT NULL, last_ts TIMESTAMP NOT NULL, rows BIGINT NOT NULL,
            labelled BIGINT NOT NULL, drift_report VARCHAR, drift_share DOUBLE,
            drifted BOOLEAN, prediction_drift BOOLEAN, error_rate DOUBLE,
            p99_latency_ms DOUBLE, metrics JSON NOT NULL, alerts JSON NOT NULL,
            PRIMARY KEY (report_id, pos));
        """
    )


def _migration_12(con: duckdb.DuckDBPyConnection) -> None:
    """An index on ``run_id`` of the tables a run's page reads. Their keys are
    ``(run_id, key)``, and DuckDB's index answers only a whole key, so reading one run's
    params scanned every row: ~80 ms a run at 100k runs, ~280 ms for the hundred of a
    ``runs compare``. Keeping them adds nothing measurable to an insert, which loads the
    key's own index anyway to check uniqueness. ``metrics`` has no key and stays
    unindexed: an index there would be kept up for every logged point."""
    con.execute(
        """
        CREATE INDEX IF NOT EXISTS params_run ON params (run_id);
        CREATE INDEX IF NOT EXISTS tags_run ON tags (run_id);
        CREATE INDEX IF NOT EXISTS metric_summary_run ON metric_summary (run_id);
        CREATE INDEX IF NOT EXISTS artifacts_run ON artifacts (run_id);
        """
    )


def _migration_13(con: duckdb.DuckDBPyConnection) -> None:
    """A dataset segment may be a range of its blob: a Parquet file stored as given is
    one blob, and each of its content-defined pieces starts at a row of it (NULL: the
    segment is its whole blob, as every segment was before)."""
    con.execute("ALTER TABLE dataset_segments ADD COLUMN IF NOT EXISTS start BIGINT")


def _migration_14(con: duckdb.DuckDBPyConnection) -> None:
    """Each dataset segment keeps the hash of its first row, which the next version's
    add matches its pieces against (NULL: computed then, by reading the row); its 64
    bits as a signed BIGINT, as the other integers are bound."""
    con.execute("ALTER TABLE dataset_segments ADD COLUMN IF NOT EXISTS first_hash BIGINT")


MIGRATIONS: dict[int, Callable[[duckdb.DuckDBPyConnection], None]] = {
    1: _migration_1,
    2: _migration_2,
    3: _migration_3,
    4: _migration_4,
    5: _migration_5,
    6: _migration_6,
    7: _migration_7,
    8: _migration_8,
    9: _migration_9,
    10: _migration_10,
    11: _migration_11,
    12: _migration_12,
    13: _migration_13,
    14: _migration_14,
}

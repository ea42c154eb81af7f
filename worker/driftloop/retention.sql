-- Named queries of driftloop.retention (log partitions and retention).

-- name: prune_logs
SELECT log, partition, starts, ends, bytes FROM drift.prune_logs(%(older_than)s::interval);

-- name: ensure_partitions
SELECT drift.ensure_partitions(NULL, true);

-- name: compact_hourly
SELECT drift.compact_rollups_hourly();

-- name: partitions
SELECT p.log, p.partition, p.starts, p.ends, p.is_default,
    pg_total_relation_size(format('drift.%I', p.partition)::regclass) AS bytes
FROM drift.log_partitions() p
ORDER BY p.log, p.starts NULLS FIRST;

-- name: prune_history
SELECT history, before, rows_deleted FROM drift.prune_history(%(older_than)s::interval);

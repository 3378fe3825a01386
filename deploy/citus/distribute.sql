-- qsampling on Citus: distribution column and co-location.
--
-- Enterprise-centred data is distributed by uscc and co-located, so an enterprise's
-- directory row, its tasks, results, final results, credit events and list entries live on
-- the same worker and join locally. Small, read-mostly tables are reference tables
-- (replicated to every worker). Plan-level rows (plans, commitments, draws) stay on the
-- coordinator: a plan is one row; the bytes of its frozen pool are spread by commitment.
--
-- Citus requires primary keys and unique constraints of distributed tables to include the
-- distribution column; the schema changes this needs are listed in deploy/SCALING.md
-- ("migration path") and applied by a dedicated Alembic revision before this script.

BEGIN;
-- reference tables: every worker gets a full copy
SELECT create_reference_table('regions');
SELECT create_reference_table('categories');
SELECT create_reference_table('units');
SELECT create_reference_table('check_items');
SELECT create_reference_table('inspectors');
SELECT create_reference_table('users');

-- the directory and everything keyed by enterprise, co-located by uscc
SELECT create_distributed_table('enterprises', 'uscc', shard_count => 32);
SELECT create_distributed_table('inspector_conflicts', 'uscc', colocate_with => 'enterprises');
SELECT create_distributed_table('tasks', 'uscc', colocate_with => 'enterprises');
-- a commitment's frozen pool.csv, in chunks: one commitment's file on one worker (it is
-- written once and read whole, in order)
SELECT create_distributed_table('draw_pool_chunks', 'commitment_id', shard_count => 32);
COMMIT;

-- Tables of the inspection, credit and disclosure modules follow the same rule where they
-- carry uscc (results, final_results, domain_events, credit events and scores, list
-- entries): create_distributed_table(<table>, 'uscc', colocate_with => 'enterprises').

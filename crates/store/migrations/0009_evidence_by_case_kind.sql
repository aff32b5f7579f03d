-- 0009: a case's events of one kind, in order. APPEND-ONLY FILE: never edit a shipped migration, add a new one.
--
-- Without it SQLite answers `case_id = ? AND kind = ? ORDER BY seq` from the index on kind
-- alone, reading every event of that kind in the log: each decision (its case's earlier
-- decision, its last case revision) took time in proportion to the whole log.
CREATE INDEX evidence_by_case_kind ON evidence (case_id, kind, seq);

-- Back to the schema before the audit log: its entries are dropped.
DROP TABLE IF EXISTS audit_log;

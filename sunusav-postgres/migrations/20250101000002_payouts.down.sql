DROP TABLE IF EXISTS webhook_events;
DROP TABLE IF EXISTS outbox;
DROP TABLE IF EXISTS payment_attempts;

-- Copied from shared/anchors/express-original/scripts/health.lua (same load for every target).
-- wrk script: GET /health (static request; no per-request Lua call).
-- Usage: wrk ... -s scripts/health.lua http://127.0.0.1:PORT/health
wrk.method = "GET"

-- ARGV: n, then per job: id, payload, priority, delay_ms, max_attempts,
-- backoff_base_ms, backoff_max_ms, backoff_jitter(0/1).
-- Returns one integer per job: 1 added, 0 duplicate.
local n = tonumber(ARGV[1])
local now = now_ms()
redis.call('ZREMRANGEBYSCORE', K .. ':claims', '-inf', now)
local seq = redis.call('INCRBY', K .. ':seq', n) - n
local out = {}
local added = 0
local first_due
for i = 0, n - 1 do
  local b = 2 + i * 8
  local delay = tonumber(ARGV[b + 3])
  local due = add_job(ARGV[b], ARGV[b + 1], tonumber(ARGV[b + 2]), delay, ARGV[b + 4], ARGV[b + 5],
    ARGV[b + 6], ARGV[b + 7], seq + i, now)
  if due then
    if delay > 0 and (not first_due or due < first_due) then first_due = due end
    added = added + 1
    out[i + 1] = 1
  else
    out[i + 1] = 0
  end
end
if first_due then lower_due(first_due) end
notify(added)
return out

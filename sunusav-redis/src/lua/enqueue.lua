-- ARGV: n, then per job: id, payload, priority, delay_ms, max_attempts,
-- backoff_base_ms, backoff_max_ms, backoff_jitter(0/1).
-- Returns one integer per job: 1 added, 0 duplicate.
local n = tonumber(ARGV[1])
local now = now_ms()
local claims = K .. ':claims'
redis.call('ZREMRANGEBYSCORE', claims, '-inf', now)
local seq = redis.call('INCRBY', K .. ':seq', n) - n
local out = {}
local added = 0
local first_due
for i = 0, n - 1 do
  local b = 2 + i * 8
  local id = ARGV[b]
  if redis.call('ZADD', claims, 'NX', 'inf', id) == 0 then
    out[i + 1] = 0
  else
    local pri = tonumber(ARGV[b + 2])
    local delay = tonumber(ARGV[b + 3])
    local wm = string.format('%016d', seq + i) .. id
    local due = now + delay
    local st = ST.waiting
    if delay > 0 then st = ST.delayed end
    redis.call('HSET', jkey(id), F.data, ARGV[b + 1], F.priority, pri, F.max_attempts, ARGV[b + 4],
      F.attempts, 0, F.stalls, 0, F.created, now, F.due, due, F.state, st, F.wait_member, wm,
      F.backoff_base, ARGV[b + 5], F.backoff_max, ARGV[b + 6], F.backoff_jitter, ARGV[b + 7])
    if delay > 0 then
      redis.call('ZADD', K .. ':' .. ST.delayed, due, id)
      if not first_due or due < first_due then first_due = due end
    else
      redis.call('ZADD', K .. ':' .. ST.waiting, -pri, wm)
    end
    added = added + 1
    out[i + 1] = 1
  end
end
if first_due then lower_due(first_due) end
notify(added)
return out

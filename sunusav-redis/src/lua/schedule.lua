-- Recurring schedules (the Scheduler capability). The caller computes run
-- times (the rules are the core's); this script stores them atomically under
-- a revision that changes with every write, so that a write planned from a
-- state that changed since is refused (compare-and-set).
-- Keys: `:sched:<id>` hash {spec, rev, next, last} ('' for none);
-- `:schedules:next` zset (next run ms, id) of schedules with a next run;
-- `:schedules:ids` zset (0, id), every id in byte order;
-- `:schedules:rev` the revision counter (never reused).
local op = ARGV[1]
local NEXT = K .. ':schedules:next'
local IDS = K .. ':schedules:ids'
local function skey(id) return K .. ':sched:' .. id end
-- Appends a schedule's row (id, spec, rev, next, last) to out; false when there is none.
local function push_row(out, id)
  local h = redis.call('HMGET', skey(id), 'spec', 'rev', 'next', 'last')
  if not h[1] then return false end
  out[#out + 1] = id
  for i = 1, 4 do out[#out + 1] = h[i] or '' end
  return true
end
local function set_next(id, next)
  if next == '' then redis.call('ZREM', NEXT, id) else redis.call('ZADD', NEXT, next, id) end
end
if op == 'get' then
  -- ARGV: id. Returns its row, or an empty array.
  local out = {}
  push_row(out, ARGV[2])
  return out
elseif op == 'put' then
  -- ARGV: id, expected rev ('0': none stored), spec, next ('' none).
  -- Returns the new revision, or 0 when the stored revision is not the expected one.
  local id = ARGV[2]
  local cur = redis.call('HGET', skey(id), 'rev') or '0'
  if cur ~= ARGV[3] then return 0 end
  local rev = redis.call('INCR', K .. ':schedules:rev')
  redis.call('HSET', skey(id), 'spec', ARGV[4], 'rev', rev, 'next', ARGV[5])
  if cur == '0' then redis.call('HSET', skey(id), 'last', '') end
  set_next(id, ARGV[5])
  redis.call('ZADD', IDS, 0, id)
  return rev
elseif op == 'remove' then
  -- ARGV: id. Returns 1 when it existed.
  local n = redis.call('DEL', skey(ARGV[2]))
  redis.call('ZREM', NEXT, ARGV[2])
  redis.call('ZREM', IDS, ARGV[2])
  return n
elseif op == 'list' then
  -- ARGV: offset, limit. Rows of the ids in that page, in id order.
  local first = tonumber(ARGV[2])
  local ids = redis.call('ZRANGE', IDS, first, first + tonumber(ARGV[3]) - 1)
  local out = {}
  for _, id in ipairs(ids) do push_row(out, id) end
  return out
elseif op == 'due' then
  -- ARGV: now (the caller's clock), limit. Rows of schedules whose next run is due.
  local ids = redis.call('ZRANGEBYSCORE', NEXT, '-inf', ARGV[2], 'LIMIT', 0, ARGV[3])
  local out = {}
  for _, id in ipairs(ids) do push_row(out, id) end
  return out
elseif op == 'fire' then
  -- ARGV: n, then per run: id, expected rev, run (= the expected next), next
  -- ('' none), job id, payload, priority, max_attempts, backoff_base_ms,
  -- backoff_max_ms, backoff_jitter. Per run: 0 refused (fired by another
  -- call, changed or removed), 1 fired and added, 2 fired and the job id was
  -- still claimed.
  local n = tonumber(ARGV[2])
  local now = now_ms()
  redis.call('ZREMRANGEBYSCORE', K .. ':claims', '-inf', now)
  local seq = redis.call('INCRBY', K .. ':seq', n) - n
  local out = {}
  local added = 0
  for i = 0, n - 1 do
    local b = 3 + i * 11
    local id = ARGV[b]
    local h = redis.call('HMGET', skey(id), 'rev', 'next')
    if h[1] ~= ARGV[b + 1] or h[2] ~= ARGV[b + 2] then
      out[i + 1] = 0
    else
      local due = add_job(ARGV[b + 4], ARGV[b + 5], tonumber(ARGV[b + 6]), 0, ARGV[b + 7], ARGV[b + 8],
        ARGV[b + 9], ARGV[b + 10], seq + i, now)
      if due then
        added = added + 1
        out[i + 1] = 1
      else
        out[i + 1] = 2
      end
      local rev = redis.call('INCR', K .. ':schedules:rev')
      redis.call('HSET', skey(id), 'rev', rev, 'next', ARGV[b + 3], 'last', ARGV[b + 2])
      set_next(id, ARGV[b + 3])
    end
  end
  notify(added)
  return out
end
return redis.error_reply('unknown schedule op')

-- Shared helpers, prepended to every script. KEYS[1] is the queue's hash-tagged
-- base key `{prefix:queue}`; every other key is derived from it (same slot).
local K = KEYS[1]
-- The codes stored in Redis, by name, mirrored in src/codes.rs (a test checks
-- that both agree, and that no script spells a code outside this table).
-- ST: a job's state (its hash's F.state, and the suffix of the state's key).
-- F: the fields of a job hash.
local ST = { waiting = 'w', active = 'a', delayed = 'd', failed = 'f', completed = 'c', dead = 'x' }
local F = {
  state = 'st', data = 'd', attempts = 'a', max_attempts = 'm', priority = 'p', stalls = 's', created = 'c',
  due = 'u', finished = 'f', error = 'e', token = 't', wait_member = 'wm', backoff_base = 'bb',
  backoff_max = 'bm', backoff_jitter = 'bj',
}
-- The key of a state's set (waiting, active, delayed, failed: zsets) or list
-- (completed, dead) is K .. ':' .. its code, spelled where used: this preamble
-- runs on every call (a script keeps nothing between calls), so it builds no
-- more tables than these two.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function jkey(id) return K .. ':j:' .. id end
-- A job's error history: a list, newest first, of 'attempt:at_ms:error',
-- trimmed to the queue's error_history; deleted with the job's hash.
local function ekey(id) return K .. ':e:' .. id end
local function push_error(id, att, now, err, keep)
  if keep <= 0 then return end
  local ek = ekey(id)
  redis.call('LPUSH', ek, string.format('%d:%d:', att, now) .. err)
  redis.call('LTRIM', ek, 0, keep - 1)
end
-- Lease tokens are 36 characters (32 hex of randomness + a 4-digit index). The
-- active set's members are token .. id, so that one ZREM both checks a lease
-- and releases it; any other token length is never a live lease.
local TOKLEN = 36
local function lease_member(id, tok) return tok .. id end
local function id_of_member(m) return string.sub(m, TOKLEN + 1) end
-- `:due` caches a lower bound of the earliest due time of the delayed and
-- failed sets ('none' when both are empty; missing = unknown, recomputed).
local DUE = K .. ':due'
local function lower_due(t)
  local cur = redis.call('GET', DUE)
  if cur and (cur == 'none' or tonumber(cur) > t) then redis.call('SET', DUE, t) end
end
-- The exact earliest due time (nil when none), stored in `:due`.
local function refresh_due()
  local best
  for _, z in ipairs({ K .. ':' .. ST.delayed, K .. ':' .. ST.failed }) do
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if first[2] then
      local t = tonumber(first[2])
      if not best or t < best then best = t end
    end
  end
  redis.call('SET', DUE, best or 'none')
  return best
end
local NOTIFY_CAP = 64
-- Wake up to n blocked waiters (the notify list never holds more than NOTIFY_CAP tokens).
local function notify(n)
  if n <= 0 then return end
  local len = redis.call('LLEN', K .. ':n')
  local room = NOTIFY_CAP - len
  if n > room then n = room end
  if n <= 0 then return end
  local t = {}
  for i = 1, n do t[i] = '1' end
  redis.call('RPUSH', K .. ':n', unpack(t))
end
-- Deletes finished jobs' hashes (and error histories) and starts their dedup claim window.
local function forget(ids, now, dedup)
  if #ids == 0 then return end
  local dels, claims = {}, {}
  for i, id in ipairs(ids) do
    dels[2 * i - 1] = jkey(id)
    dels[2 * i] = ekey(id)
    claims[2 * i - 1] = now + dedup
    claims[2 * i] = id
  end
  redis.call('DEL', unpack(dels))
  redis.call('ZADD', K .. ':claims', 'XX', unpack(claims))
end
-- Pushes ids onto a retention list (newest first) and trims it to keep,
-- deleting trimmed jobs' hashes and starting their dedup claim window.
local function retain(list, ids, keep, now, dedup)
  if #ids == 0 then return end
  local len = redis.call('LPUSH', list, unpack(ids))
  if len > keep then forget(redis.call('RPOP', list, len - keep), now, dedup) end
end
-- Completes acked jobs (in ack order, the last one newest) under the
-- retention `keep`: only the jobs that stay retained are written; those that
-- the retention would drop at once are deleted without being written first.
local function complete(ids, keep, now, dedup)
  local n = #ids
  if n == 0 then return end
  local list = K .. ':' .. ST.completed
  local doomed = {}
  local first = 1
  if n >= keep then
    -- The batch alone fills the retention: every older entry goes.
    doomed = redis.call('LRANGE', list, 0, -1)
    if #doomed > 0 then redis.call('DEL', list) end
    for i = 1, n - keep do doomed[#doomed + 1] = ids[i] end
    first = n - keep + 1
  end
  local kept = {}
  for i = first, n do
    redis.call('HSET', jkey(ids[i]), F.state, ST.completed, F.finished, now, F.token, '')
    kept[#kept + 1] = ids[i]
  end
  if #kept > 0 then
    local len = redis.call('LPUSH', list, unpack(kept))
    if len > keep then
      local old = redis.call('RPOP', list, len - keep)
      for _, id in ipairs(old) do doomed[#doomed + 1] = id end
    end
  end
  forget(doomed, now, dedup)
end
-- Moves due members of a schedule zset (delayed or failed) to waiting.
local function promote_due(zkey, now)
  local ids = redis.call('ZRANGEBYSCORE', zkey, '-inf', now, 'LIMIT', 0, 1000)
  if #ids == 0 then return 0 end
  local adds = {}
  for i, id in ipairs(ids) do
    local jk = jkey(id)
    local h = redis.call('HMGET', jk, F.priority, F.wait_member)
    adds[2 * i - 1] = -tonumber(h[1])
    adds[2 * i] = h[2]
    redis.call('HSET', jk, F.state, ST.waiting, F.due, now)
  end
  redis.call('ZADD', K .. ':' .. ST.waiting, unpack(adds))
  redis.call('ZREM', zkey, unpack(ids))
  return #ids
end
-- Moves an active job (already removed from the active set) to the dead letters.
local function to_dead(id, err, keep, now, dedup)
  redis.call('HSET', jkey(id), F.state, ST.dead, F.finished, now, F.error, err, F.token, '')
  retain(K .. ':' .. ST.dead, { id }, keep, now, dedup)
end

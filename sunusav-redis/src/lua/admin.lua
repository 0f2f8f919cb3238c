-- ARGV: op, ...; ops: stats | get id | list state offset limit | retry id | retry_all
--                     | remove id dedup_ms | promote id | pause | resume.
-- Replies: stats: name/value pairs; get: a job's info (see `info`) or false;
-- list: an array of jobs' info; the others { 'ok' } ({ 'ok', n } for
-- retry_all), or { 'err', code, state? } with code 'not_found' | 'wrong_state'.
local op = ARGV[1]
-- A job's info: flat name/value pairs (as HGETALL's), `id` then the fields of
-- INFO by name (`finished` and `error` only when set), then `errors`: the
-- error history, oldest first (each 'attempt:at_ms:error'); or false when
-- there is no such job. Mirrored in src/codes.rs.
local INFO = { 'state', 'data', 'attempts', 'max_attempts', 'priority', 'stalls', 'created', 'due', 'finished',
  'error' }
local INFO_CODES = {}
for i, name in ipairs(INFO) do INFO_CODES[i] = F[name] end
local function info(id)
  local h = redis.call('HMGET', jkey(id), unpack(INFO_CODES))
  if not h[1] then return false end
  local out = { 'id', id }
  for i, name in ipairs(INFO) do
    if h[i] then
      out[#out + 1] = name
      out[#out + 1] = h[i]
    end
  end
  local hist = redis.call('LRANGE', ekey(id), 0, -1)
  local errors = {}
  for i = #hist, 1, -1 do errors[#errors + 1] = hist[i] end
  out[#out + 1] = 'errors'
  out[#out + 1] = errors
  return out
end
local function state_of(id)
  return redis.call('HGET', jkey(id), F.state)
end
local function to_waiting(id, now)
  local jk = jkey(id)
  local h = redis.call('HMGET', jk, F.priority, F.wait_member)
  redis.call('HSET', jk, F.state, ST.waiting, F.due, now)
  redis.call('ZADD', K .. ':' .. ST.waiting, -tonumber(h[1]), h[2])
end
local function revive(id, now)
  redis.call('HSET', jkey(id), F.attempts, 0, F.stalls, 0)
  redis.call('HDEL', jkey(id), F.finished)
  to_waiting(id, now)
end
if op == 'stats' then
  -- Name/value pairs: each state's count by name, then `paused` (0 or 1).
  local out = {}
  for name, code in pairs(ST) do
    local count = 'ZCARD'
    if code == ST.completed or code == ST.dead then count = 'LLEN' end
    out[#out + 1] = name
    out[#out + 1] = redis.call(count, K .. ':' .. code)
  end
  out[#out + 1] = 'paused'
  out[#out + 1] = redis.call('EXISTS', K .. ':paused')
  return out
elseif op == 'get' then
  return info(ARGV[2])
elseif op == 'list' then
  local st, off, lim = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  local ids = {}
  if lim > 0 then
    if st == ST.completed or st == ST.dead then
      local key = K .. ':' .. st
      local raw = redis.call('LRANGE', key, -(off + lim), -(off + 1))
      for i = #raw, 1, -1 do ids[#ids + 1] = raw[i] end
      local len = redis.call('LLEN', key)
      if off >= len then ids = {} end
    elseif st == ST.waiting then
      for _, wm in ipairs(redis.call('ZRANGE', K .. ':' .. ST.waiting, off, off + lim - 1)) do
        ids[#ids + 1] = string.sub(wm, 17)
      end
    elseif st == ST.active then
      for _, m in ipairs(redis.call('ZRANGE', K .. ':' .. ST.active, off, off + lim - 1)) do
        ids[#ids + 1] = id_of_member(m)
      end
    else
      ids = redis.call('ZRANGE', K .. ':' .. st, off, off + lim - 1)
    end
  end
  local out = {}
  for _, id in ipairs(ids) do
    local i = info(id)
    if i then out[#out + 1] = i end
  end
  return out
elseif op == 'retry' then
  local st = state_of(ARGV[2])
  if not st then return { 'err', 'not_found' } end
  if st ~= ST.dead then return { 'err', 'wrong_state', st } end
  redis.call('LREM', K .. ':' .. ST.dead, 0, ARGV[2])
  revive(ARGV[2], now_ms())
  notify(1)
  return { 'ok' }
elseif op == 'retry_all' then
  local ids = redis.call('LRANGE', K .. ':' .. ST.dead, 0, -1)
  local now = now_ms()
  redis.call('DEL', K .. ':' .. ST.dead)
  for _, id in ipairs(ids) do revive(id, now) end
  notify(#ids)
  return { 'ok', #ids }
elseif op == 'remove' then
  local id = ARGV[2]
  local h = redis.call('HMGET', jkey(id), F.state, F.wait_member)
  local st = h[1]
  if not st then return { 'err', 'not_found' } end
  if st == ST.active then return { 'err', 'wrong_state', st } end
  if st == ST.waiting then redis.call('ZREM', K .. ':' .. ST.waiting, h[2])
  elseif st == ST.delayed or st == ST.failed then redis.call('ZREM', K .. ':' .. st, id)
  else redis.call('LREM', K .. ':' .. st, 0, id) end
  redis.call('DEL', jkey(id), ekey(id))
  redis.call('ZADD', K .. ':claims', 'XX', now_ms() + tonumber(ARGV[3]), id)
  return { 'ok' }
elseif op == 'promote' then
  local id = ARGV[2]
  local st = state_of(id)
  if not st then return { 'err', 'not_found' } end
  if st ~= ST.delayed and st ~= ST.failed then return { 'err', 'wrong_state', st } end
  redis.call('ZREM', K .. ':' .. st, id)
  to_waiting(id, now_ms())
  notify(1)
  return { 'ok' }
elseif op == 'pause' then
  redis.call('SET', K .. ':paused', '1')
  return { 'ok' }
elseif op == 'resume' then
  redis.call('DEL', K .. ':paused')
  notify(NOTIFY_CAP)
  return { 'ok' }
end
return redis.error_reply('unknown op ' .. tostring(op))

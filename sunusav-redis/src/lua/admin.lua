-- ARGV: op, ...; ops: stats | get id | list state offset limit | list_after state cursor ('' none) limit
--                     | retry id | retry_all
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
-- The ids of state `st` from position `off` (oldest first), at most `lim`.
local function ids_at(st, off, lim)
  local ids = {}
  if lim <= 0 then return ids end
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
  return ids
end
-- The jobs' info of `ids` that still exist.
local function infos(ids)
  local out = {}
  for _, id in ipairs(ids) do
    local i = info(id)
    if i then out[#out + 1] = i end
  end
  return out
end
-- A page after a cursor. Waiting, delayed and failed (zsets whose members
-- hold no secret) have exact cursors `<state>:<score>:<member>`: the
-- cursor's place is found by putting its member at its score for the time of
-- this script (then putting back what was there), so it holds when its job
-- has left. Active members hold lease tokens (never put in a cursor) and
-- completed and dead are lists: their cursors are `<state>:<position>:<id>`,
-- the job looked for around its old position (from that position when gone).
-- Returns { infos, next cursor or false, resumed (0/1) }, or { 'err', 'invalid_cursor' }.
local function page_after(st, cursor, lim)
  if lim <= 0 then return { {}, false, 0 } end
  local exact = st == ST.waiting or st == ST.delayed or st == ST.failed
  local start, resumed = 0, 0
  if cursor ~= '' then
    local cst, a, b = string.match(cursor, '^(%a+):([^:]+):(.+)$')
    if cst ~= st then return { 'err', 'invalid_cursor' } end
    if exact then
      local score = tonumber(a)
      if not score or score ~= score or score == math.huge or score == -math.huge then
        return { 'err', 'invalid_cursor' }
      end
      if st == ST.waiting and (#b <= 16 or not string.match(string.sub(b, 1, 16), '^%d+$')) then
        return { 'err', 'invalid_cursor' }
      end
      local key = K .. ':' .. st
      local old = redis.call('ZSCORE', key, b)
      redis.call('ZADD', key, a, b)
      start = redis.call('ZRANK', key, b)
      if old then
        redis.call('ZADD', key, old, b)
        -- The member itself is at or before the cursor's place.
        if tonumber(old) <= score then start = start + 1 end
      else
        redis.call('ZREM', key, b)
      end
    else
      local pos = tonumber(a)
      if not pos or pos < 0 or pos ~= math.floor(pos) then return { 'err', 'invalid_cursor' } end
      local from = pos - lim
      if from < 0 then from = 0 end
      -- Not found: it left, so the jobs after it moved back at least one place.
      start, resumed = pos, 1
      for i, id in ipairs(ids_at(st, from, lim * 3)) do
        if id == b then
          start, resumed = from + i, 0
          break
        end
      end
    end
  end
  local ids
  local next = false
  if exact then
    local raw = redis.call('ZRANGE', K .. ':' .. st, start, start + lim, 'WITHSCORES')
    local n = #raw / 2
    ids = {}
    for i = 1, math.min(n, lim) do
      local m = raw[2 * i - 1]
      if st == ST.waiting then ids[i] = string.sub(m, 17) else ids[i] = m end
    end
    if n > lim then next = st .. ':' .. raw[2 * lim] .. ':' .. raw[2 * lim - 1] end
  else
    ids = ids_at(st, start, lim + 1)
    if #ids > lim then
      ids[#ids] = nil
      next = st .. ':' .. (start + lim - 1) .. ':' .. ids[#ids]
    end
  end
  return { infos(ids), next, resumed }
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
  return infos(ids_at(ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])))
elseif op == 'list_after' then
  return page_after(ARGV[2], ARGV[3], tonumber(ARGV[4]))
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

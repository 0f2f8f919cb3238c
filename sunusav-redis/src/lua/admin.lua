-- ARGV: op, ...; ops: stats | get id | list state offset limit | retry id | retry_all
--                     | remove id dedup_ms | promote id | pause | resume.
-- Errors are returned as { 'err', code, state? } with code 'not_found' | 'wrong_state'.
local op = ARGV[1]
local FIELDS = { 'st', 'd', 'a', 'm', 'p', 's', 'c', 'u', 'f', 'e' }
local function info(id)
  local h = redis.call('HMGET', jkey(id), unpack(FIELDS))
  if not h[1] then return false end
  return { id, h[1], h[2], h[3], h[4], h[5], h[6], h[7], h[8], h[9] or '', h[10] or false }
end
local function state_of(id)
  return redis.call('HGET', jkey(id), 'st')
end
local function to_waiting(id, now)
  local jk = jkey(id)
  local h = redis.call('HMGET', jk, 'p', 'wm')
  redis.call('HSET', jk, 'st', 'w', 'u', now)
  redis.call('ZADD', K .. ':w', -tonumber(h[1]), h[2])
end
local function revive(id, now)
  redis.call('HSET', jkey(id), 'a', 0, 's', 0)
  redis.call('HDEL', jkey(id), 'f')
  to_waiting(id, now)
end
if op == 'stats' then
  return { redis.call('ZCARD', K .. ':w'), redis.call('ZCARD', K .. ':a'), redis.call('ZCARD', K .. ':d'),
    redis.call('ZCARD', K .. ':f'), redis.call('LLEN', K .. ':c'), redis.call('LLEN', K .. ':x'),
    redis.call('EXISTS', K .. ':paused') }
elseif op == 'get' then
  local i = info(ARGV[2])
  if not i then return {} end
  return { i }
elseif op == 'list' then
  local st, off, lim = ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4])
  local ids = {}
  if lim > 0 then
    if st == 'c' or st == 'x' then
      local key = K .. ':' .. st
      local raw = redis.call('LRANGE', key, -(off + lim), -(off + 1))
      for i = #raw, 1, -1 do ids[#ids + 1] = raw[i] end
      local len = redis.call('LLEN', key)
      if off >= len then ids = {} end
    elseif st == 'w' then
      for _, wm in ipairs(redis.call('ZRANGE', K .. ':w', off, off + lim - 1)) do ids[#ids + 1] = string.sub(wm, 17) end
    elseif st == 'a' then
      for _, m in ipairs(redis.call('ZRANGE', K .. ':a', off, off + lim - 1)) do ids[#ids + 1] = id_of_member(m) end
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
  if st ~= 'x' then return { 'err', 'wrong_state', st } end
  redis.call('LREM', K .. ':x', 0, ARGV[2])
  revive(ARGV[2], now_ms())
  notify(1)
  return { 'ok' }
elseif op == 'retry_all' then
  local ids = redis.call('LRANGE', K .. ':x', 0, -1)
  local now = now_ms()
  redis.call('DEL', K .. ':x')
  for _, id in ipairs(ids) do revive(id, now) end
  notify(#ids)
  return { 'ok', #ids }
elseif op == 'remove' then
  local id = ARGV[2]
  local h = redis.call('HMGET', jkey(id), 'st', 'wm')
  local st = h[1]
  if not st then return { 'err', 'not_found' } end
  if st == 'a' then return { 'err', 'wrong_state', st } end
  if st == 'w' then redis.call('ZREM', K .. ':w', h[2])
  elseif st == 'd' or st == 'f' then redis.call('ZREM', K .. ':' .. st, id)
  else redis.call('LREM', K .. ':' .. st, 0, id) end
  redis.call('DEL', jkey(id))
  redis.call('ZADD', K .. ':claims', 'XX', now_ms() + tonumber(ARGV[3]), id)
  return { 'ok' }
elseif op == 'promote' then
  local id = ARGV[2]
  local st = state_of(id)
  if not st then return { 'err', 'not_found' } end
  if st ~= 'd' and st ~= 'f' then return { 'err', 'wrong_state', st } end
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

-- ARGV: max_stalls, keep_dead, dedup_ms. Returns how many jobs were recovered or dead-lettered.
local max_stalls, keep, dedup = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local members = redis.call('ZRANGEBYSCORE', K .. ':a', '-inf', now, 'LIMIT', 0, 1000)
if #members == 0 then return 0 end
redis.call('ZREM', K .. ':a', unpack(members))
local ids = {}
for i, m in ipairs(members) do ids[i] = id_of_member(m) end
local back = 0
for _, id in ipairs(ids) do
  local jk = jkey(id)
  local stalls = redis.call('HINCRBY', jk, 's', 1)
  if stalls > max_stalls then
    to_dead(id, 'stalled: lease expired ' .. stalls .. ' times', keep, now, dedup)
  else
    local h = redis.call('HMGET', jk, 'p', 'wm')
    redis.call('HSET', jk, 'st', 'w', 't', '', 'u', now)
    redis.call('ZADD', K .. ':w', -tonumber(h[1]), h[2])
    back = back + 1
  end
end
notify(back)
return #ids

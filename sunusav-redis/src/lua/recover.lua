-- ARGV: max_stalls, keep_dead, dedup_ms. Returns how many jobs were recovered or dead-lettered.
-- A stalled job goes to the dead letters when it stalled more than max_stalls
-- times or when its attempts are used up (its next reserve would exceed them).
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
  local h = redis.call('HMGET', jk, 'p', 'wm', 'a', 'm')
  if stalls > max_stalls or tonumber(h[3]) >= tonumber(h[4]) then
    to_dead(id, 'stalled ' .. stalls .. ' times: its lease expired without an ack', keep, now, dedup)
  else
    redis.call('HSET', jk, 'st', 'w', 't', '', 'u', now)
    redis.call('ZADD', K .. ':w', -tonumber(h[1]), h[2])
    back = back + 1
  end
end
notify(back)
return #ids

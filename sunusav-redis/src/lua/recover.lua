-- ARGV: max_stalls, keep_dead, dedup_ms, error_history. Recovers at most 1000 expired leases.
-- Each stall is written to the job's error history ('lease expired ...').
-- Returns { n, dead (flat, 7 per job as step.lua's reserved jobs), errors }:
-- n jobs were recovered or dead-lettered; `dead` are the jobs this call moved
-- to the dead letters (id, payload, attempts, max, the expired token, created,
-- due) and `errors` their errors, in the same order.
-- A stalled job goes to the dead letters when it stalled more than max_stalls
-- times or when its attempts are used up (its next reserve would exceed them).
local max_stalls, keep, dedup, history = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local now = now_ms()
local members = redis.call('ZRANGEBYSCORE', K .. ':' .. ST.active, '-inf', now, 'LIMIT', 0, 1000)
if #members == 0 then return { 0, {}, {} } end
redis.call('ZREM', K .. ':' .. ST.active, unpack(members))
local back = 0
local dead, errors = {}, {}
for _, m in ipairs(members) do
  local id = id_of_member(m)
  local jk = jkey(id)
  local stalls = redis.call('HINCRBY', jk, F.stalls, 1)
  local h = redis.call('HMGET', jk, F.priority, F.wait_member, F.attempts, F.max_attempts, F.data, F.created, F.due)
  push_error(id, tonumber(h[3]), now, 'lease expired without an ack (stall ' .. stalls .. ')', history)
  if stalls > max_stalls or tonumber(h[3]) >= tonumber(h[4]) then
    local err = 'stalled ' .. stalls .. ' times: its lease expired without an ack'
    -- Read before to_dead: the retention may delete the job at once.
    local j = #dead
    dead[j + 1] = id
    dead[j + 2] = h[5]
    dead[j + 3] = tonumber(h[3])
    dead[j + 4] = tonumber(h[4])
    dead[j + 5] = string.sub(m, 1, TOKLEN)
    dead[j + 6] = tonumber(h[6])
    dead[j + 7] = tonumber(h[7])
    errors[#errors + 1] = err
    to_dead(id, err, keep, now, dedup)
  else
    redis.call('HSET', jk, F.state, ST.waiting, F.token, '', F.due, now)
    redis.call('ZADD', K .. ':' .. ST.waiting, -tonumber(h[1]), h[2])
    back = back + 1
  end
end
notify(back)
return { #members, dead, errors }

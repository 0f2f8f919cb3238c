-- Acknowledges jobs, then reserves up to `count` jobs (one round trip).
-- ARGV: lease_ms, count, token_base, keep_completed, dedup_ms, strict(0/1),
--       n_acks, then per ack: id, token.
-- Returns { ack_results (1 ok / 0 lease lost) , jobs (flat, 7 per job), next_due_in_ms (-1 none) }.
local lease = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local base = ARGV[3]
local keep = tonumber(ARGV[4])
local dedup = tonumber(ARGV[5])
local strict = ARGV[6] == '1'
local nacks = tonumber(ARGV[7])
local now = now_ms()
local acked, results = {}, {}
local lost = false
for i = 0, nacks - 1 do
  local id, tok = ARGV[8 + 2 * i], ARGV[9 + 2 * i]
  local jk = jkey(id)
  local h = redis.call('HMGET', jk, 't', 'st')
  if h[1] == tok and h[2] == 'a' then
    redis.call('HSET', jk, 'st', 'c', 'f', now, 't', '')
    acked[#acked + 1] = id
    results[i + 1] = 1
  else
    results[i + 1] = 0
    lost = true
  end
end
if #acked > 0 then
  redis.call('ZREM', K .. ':a', unpack(acked))
  retain(K .. ':c', acked, keep, now, dedup)
end
if strict and lost then count = 0 end
local jobs = {}
if count > 0 and redis.call('EXISTS', K .. ':paused') == 0 then
  promote_due(K .. ':d', now)
  promote_due(K .. ':f', now)
  local popped = redis.call('ZPOPMIN', K .. ':w', count)
  local act = {}
  for i = 1, #popped, 2 do
    local wm = popped[i]
    local id = string.sub(wm, 17)
    local jk = jkey(id)
    local h = redis.call('HMGET', jk, 'd', 'a', 'm', 'c', 'u')
    if h[1] then
      local att = tonumber(h[2]) + 1
      local tok = base .. ':' .. i
      redis.call('HSET', jk, 'st', 'a', 'a', att, 't', tok)
      act[#act + 1] = now + lease
      act[#act + 1] = id
      local j = #jobs
      jobs[j + 1] = id
      jobs[j + 2] = h[1]
      jobs[j + 3] = att
      jobs[j + 4] = tonumber(h[3])
      jobs[j + 5] = tok
      jobs[j + 6] = tonumber(h[4])
      jobs[j + 7] = tonumber(h[5])
    end
  end
  if #act > 0 then redis.call('ZADD', K .. ':a', unpack(act)) end
end
local next_due = -1
if #jobs == 0 and nacks == 0 then
  for _, z in ipairs({ K .. ':d', K .. ':f' }) do
    local first = redis.call('ZRANGE', z, 0, 0, 'WITHSCORES')
    if first[2] then
      local d = tonumber(first[2]) - now
      if d < 0 then d = 0 end
      if next_due < 0 or d < next_due then next_due = d end
    end
  end
end
return { results, jobs, next_due }

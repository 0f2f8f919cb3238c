-- Acknowledges jobs, then reserves up to `count` jobs (one round trip).
-- ARGV: lease_ms, count, token_base (32 chars), keep_completed, dedup_ms, strict(0/1),
--       n_acks, then per ack: id, token.
-- Returns { ack_results (1 ok / 0 lease lost) , jobs (flat, 7 per job), next_due_in_ms (-1 none) }.
-- While the queue is paused next_due_in_ms is -1: nothing is promoted then, so
-- a due time already past would send waiters straight back here; they block on
-- the wake-up list instead, which `resume` fills.
local lease = tonumber(ARGV[1])
local count = tonumber(ARGV[2])
local base = ARGV[3]
local keep = tonumber(ARGV[4])
local dedup = tonumber(ARGV[5])
local strict = ARGV[6] == '1'
local nacks = tonumber(ARGV[7])
local now = now_ms()
local results = {}
local lost = false
if nacks > 0 then
  local acked = {}
  -- One ZREM of every lease (token .. id) releases the held ones; when it
  -- removed them all (the usual case) every ack holds its lease. Otherwise the
  -- job hashes tell which did: a held lease still has its token in `t`.
  local members = {}
  for i = 0, nacks - 1 do
    local id, tok = ARGV[8 + 2 * i], ARGV[9 + 2 * i]
    if #tok == TOKLEN then members[#members + 1] = lease_member(id, tok) end
  end
  local removed = 0
  if #members > 0 then removed = redis.call('ZREM', K .. ':' .. ST.active, unpack(members)) end
  local all_held = removed == nacks
  local seen = {}
  for i = 0, nacks - 1 do
    local id, tok = ARGV[8 + 2 * i], ARGV[9 + 2 * i]
    if not seen[id] and (all_held or (removed > 0 and #tok == TOKLEN and redis.call('HGET', jkey(id), F.token) == tok)) then
      seen[id] = true
      acked[#acked + 1] = id
      results[i + 1] = 1
    else
      results[i + 1] = 0
      lost = true
    end
  end
  complete(acked, keep, now, dedup)
end
if strict and lost then count = 0 end
local jobs = {}
if count == 0 and nacks > 0 then return { results, jobs, -1 } end
-- One read for the pause flag and the cached next due time.
local ctl = redis.call('MGET', K .. ':paused', DUE)
local due = ctl[2]
if due == 'none' then due = nil elseif due then due = tonumber(due) end
if count > 0 and not ctl[1] then
  -- Promote only when something may be due (`:due` missing = unknown).
  if ctl[2] == false or (due and due <= now) then
    promote_due(K .. ':' .. ST.delayed, now)
    promote_due(K .. ':' .. ST.failed, now)
    due = refresh_due()
  end
  local popped = redis.call('ZPOPMIN', K .. ':' .. ST.waiting, count)
  local act = {}
  for i = 1, #popped, 2 do
    local wm = popped[i]
    local id = string.sub(wm, 17)
    local jk = jkey(id)
    local h = redis.call('HMGET', jk, F.data, F.attempts, F.max_attempts, F.created, F.due)
    if h[1] then
      local att = tonumber(h[2]) + 1
      local tok = base .. string.format('%04d', (i + 1) / 2)
      redis.call('HSET', jk, F.state, ST.active, F.attempts, att, F.token, tok)
      act[#act + 1] = now + lease
      act[#act + 1] = lease_member(id, tok)
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
  if #act > 0 then redis.call('ZADD', K .. ':' .. ST.active, unpack(act)) end
elseif ctl[2] == false and #jobs == 0 and nacks == 0 then
  due = refresh_due()
end
local next_due = -1
if #jobs == 0 and nacks == 0 and due and not ctl[1] then
  next_due = due - now
  if next_due < 0 then next_due = 0 end
end
return { results, jobs, next_due }

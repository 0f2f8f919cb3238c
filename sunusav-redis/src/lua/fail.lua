-- ARGV: id, token, error, kind ('retry' | 'after' | 'perm'), after_ms, jitter_unit, keep_dead, dedup_ms,
--       error_history (errors kept per job).
-- Returns { -1 } lease lost, { 0 } dead, { 1, delay_ms } retrying.
local id, tok, err, kind = ARGV[1], ARGV[2], ARGV[3], ARGV[4]
local jk = jkey(id)
local h = redis.call('HMGET', jk, F.token, F.state, F.attempts, F.max_attempts, F.backoff_base, F.backoff_max,
  F.backoff_jitter)
if #tok ~= TOKLEN or h[1] ~= tok or h[2] ~= ST.active then return { -1 } end
local now = now_ms()
redis.call('ZREM', K .. ':' .. ST.active, lease_member(id, tok))
local att, max = tonumber(h[3]), tonumber(h[4])
push_error(id, att, now, err, tonumber(ARGV[9]))
if kind == 'perm' or att >= max then
  to_dead(id, err, tonumber(ARGV[7]), now, tonumber(ARGV[8]))
  return { 0 }
end
local delay
if kind == 'after' then
  delay = tonumber(ARGV[5])
else
  local bb, bm = tonumber(h[5]), tonumber(h[6])
  local exp = att - 1
  if exp > 32 then exp = 32 end
  delay = bb * (2 ^ exp)
  if delay > bm then delay = bm end
  if h[7] == '1' then
    local half = math.floor(delay / 2)
    delay = half + math.floor(tonumber(ARGV[6]) * (delay - half) / 4294967295)
  end
end
redis.call('HSET', jk, F.state, ST.failed, F.due, now + delay, F.error, err, F.token, '')
redis.call('ZADD', K .. ':' .. ST.failed, now + delay, id)
lower_due(now + delay)
notify(1)
return { 1, delay }

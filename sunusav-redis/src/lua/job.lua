-- Adding one job, for the scripts that add jobs (enqueue, schedule); placed
-- after common.lua. `seq` is the job's FIFO sequence, `now` the server's time.
-- Returns the job's due time when added, nil when its id is claimed.
local function add_job(id, data, pri, delay, max_attempts, bb, bm, bj, seq, now)
  if redis.call('ZADD', K .. ':claims', 'NX', 'inf', id) == 0 then return nil end
  local wm = string.format('%016d', seq) .. id
  local due = now + delay
  local st = ST.waiting
  if delay > 0 then st = ST.delayed end
  redis.call('HSET', jkey(id), F.data, data, F.priority, pri, F.max_attempts, max_attempts,
    F.attempts, 0, F.stalls, 0, F.created, now, F.due, due, F.state, st, F.wait_member, wm,
    F.backoff_base, bb, F.backoff_max, bm, F.backoff_jitter, bj)
  if delay > 0 then
    redis.call('ZADD', K .. ':' .. ST.delayed, due, id)
  else
    redis.call('ZADD', K .. ':' .. ST.waiting, -pri, wm)
  end
  return due
end

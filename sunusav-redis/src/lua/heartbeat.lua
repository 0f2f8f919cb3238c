-- ARGV: id, token, lease_ms. Returns 1 extended, 0 lease lost.
local h = redis.call('HMGET', jkey(ARGV[1]), 't', 'st')
if h[1] ~= ARGV[2] or h[2] ~= 'a' then return 0 end
redis.call('ZADD', K .. ':a', 'XX', now_ms() + tonumber(ARGV[3]), ARGV[1])
return 1

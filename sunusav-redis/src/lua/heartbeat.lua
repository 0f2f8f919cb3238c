-- ARGV: id, token, lease_ms. Returns 1 extended, 0 lease lost.
local id, tok = ARGV[1], ARGV[2]
if #tok ~= TOKLEN then return 0 end
local m = lease_member(id, tok)
if not redis.call('ZSCORE', K .. ':' .. ST.active, m) then return 0 end
redis.call('ZADD', K .. ':' .. ST.active, 'XX', now_ms() + tonumber(ARGV[3]), m)
return 1

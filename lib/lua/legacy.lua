-- legacy (read-only): the original Python system's keys, exactly as it
-- wrote them, beside Redis' clock, so one round trip gives the plugin
-- everything the legacy layout can tell.  op[1..6] are the key names (the
-- list lives once, in lib/legacy.c).  Nothing is parsed or written here:
-- the values go back raw and lib/legacy.c judges them.
--
-- The legacy keys carry no hash tag and are not declared in KEYS: fine on a
-- standalone Redis (or a replica), not on Redis Cluster, where they may live
-- in another slot than the pool's keys.
-- Reply: {TIME seconds, TIME microseconds, value or nil x 6}
local raw = redis.call('MGET', unpack(op))
local reply = {tonumber(t[1]), tonumber(t[2])}
for i = 1, #op do
  reply[#reply + 1] = raw[i]
end
return reply

#!lua flags=no-writes
-- legacy (read-only, flagged so): the original Python system's keys, exactly as it
-- wrote them, beside Redis' clock (TIME: seconds and microseconds), so one
-- round trip gives the plugin everything the legacy layout can tell.  The
-- arguments are the key names (the list lives once, in lib/legacy.c); each
-- answers its value or nil.  Nothing is parsed or written here: the values
-- go back raw and lib/legacy.c judges them.  The script takes neither the
-- pool's keys nor the policy, so the prelude is not included.
--
-- The legacy keys carry no hash tag and are not declared in KEYS: fine on a
-- standalone Redis (or a replica), not on Redis Cluster, where they may live
-- in another slot.
-- @keys none
-- @call legacy(key...) -> {time_s, time_us} {value}...
local t = redis.call('TIME')
local raw = redis.call('MGET', unpack(ARGV))
local reply = {tonumber(t[1]), tonumber(t[2])}
for i = 1, #ARGV do
  reply[#reply + 1] = raw[i]
end
return reply

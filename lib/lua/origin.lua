-- origin: the connection reached its master through Redis Sentinel, and
-- that server's INFO run_id is `run_id` (the library sends this once for
-- each master it has not seen, before anything else).  The pool's balance
-- was last grounded under the master its 'origin' field names: under any
-- other (a failover promoted a replica, the master restarted) the last
-- grants and completions may have been lost with the asynchronous
-- replication, so the bucket gets 'reground_ms' (Redis' now), and acquire
-- grants nothing until a sync from the API's balance takes it off
-- (reground_wait in prelude.lua).  The wait queue goes too: its tickets
-- are the old master's, of attempts whose replies may have been lost with
-- it (their callers retry with new ones), and tickets nobody comes back
-- for would hold the line up until their turn.  A pool without state (no
-- 'tokens': it needs a sync anyway) only records the master, so that the
-- state its first sync writes counts as grounded here.  marked: 1 when
-- this call set the mark.
-- @keys pool
-- @call origin(run_id) -> {marked}
local B = KEYS[1]
local run_id = ARGV[1]
local seen = redis.pcall('HGET', B, 'origin')
if seen == run_id or type(seen) == 'table' then
  return {0} -- known, or not our hash (WRONGTYPE: the scripts say so)
end
if not redis.call('HGET', B, 'tokens') then
  redis.call('HSET', B, 'origin', run_id)
  return {0}
end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('HSET', B, 'origin', run_id, 'reground_ms', string.format('%d', now))
redis.call('DEL', KEYS[8])
return {1}

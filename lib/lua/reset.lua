-- reset: delete the pool's keys by name, never by a keyspace scan (which
-- would block Redis for every other pool on a large database): the pool's
-- keys, and with all = 1 the recovery guard's and its audit trail.
-- `deleted` counts the keys that existed.
-- @keys pool guard
-- @policy
-- @call reset(all) -> {deleted}
local deleted = redis.call('DEL', B, L, E, H, W, S, U)
if op[1] == '1' then
  deleted = deleted + redis.call('DEL', KEYS[8], KEYS[9], KEYS[10], KEYS[11])
end
return {deleted}

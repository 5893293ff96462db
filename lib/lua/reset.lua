-- reset: delete the pool's keys by name, never by a keyspace scan (which
-- would block Redis for every other pool on a large database): the pool's
-- keys (the wait queue among them: its waiters then find no state and are
-- told need_sync), and with all = 1 the recovery guard's and its audit
-- trail.  `deleted` counts the keys that existed.  Keys of any type go
-- (reset is the cure for keys written by something else), so only the
-- permission to delete each is checked first.
-- @keys pool guard
-- @policy
-- @call reset(all) -> {deleted}
local keys = {B, L, E, H, W, S, U, Q}
if op[1] == '1' then
  for i = 9, 12 do
    keys[#keys + 1] = KEYS[i]
  end
end
local writes = {}
for i, k in ipairs(keys) do
  writes[i] = {'DEL', k}
end
local bad = preflight({}, writes)
if bad then
  return bad
end
return {redis.call('DEL', unpack(keys))}

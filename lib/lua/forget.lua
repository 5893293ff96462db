-- forget: remove a departed worker's records (heartbeat, phase, busy
-- period); `found` is 0 when the pool had none of that id.
-- @keys pool
-- @policy
-- @call forget(worker) -> {found}
local id = op[1]
local bad = preflight({H, W, U}, {{'ZREM', H, 'm'}, {'HDEL', W, 'f'},
                                  {'ZREM', U, 'm'}})
if bad then
  return bad
end
local found = redis.call('ZREM', H, id) + redis.call('HDEL', W, id)
redis.call('ZREM', U, id)
return {found > 0 and 1 or 0}

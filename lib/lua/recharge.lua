-- recharge: force recharge mode on ('1') or off ('0').
-- @keys pool
-- @policy
-- @call recharge(on) -> {recharge_mode}
local s, err = load()
if err then
  return redis.error_reply(err)
end
if op[1] == '1' then
  if not (s and recharge_on(s) and not recharge_timed_out(s)) then
    redis.call('HSET', B, 'recharge_since_ms', now)
  end
  return {1}
end
redis.call('HDEL', B, 'recharge_since_ms')
return {0}

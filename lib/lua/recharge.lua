-- recharge: force recharge mode on ('1') or off ('0').
-- @keys pool
-- @policy
-- @call recharge(on) -> {recharge_mode}
if op[1] ~= '0' and op[1] ~= '1' then
  return redis.error_reply("TKMARG recharge takes '1' or '0' (nothing was changed)")
end
local bad = preflight({B, L, E}, WRITE_BUCKET)
if bad then
  return bad
end
local s, err = load()
if err then
  return redis.error_reply(err)
end
if op[1] == '1' then
  if not (s and recharge_on(s) and not recharge_timed_out(s)) then
    redis.call('HSET', B, 'recharge_since_ms', fmt(now))
  end
  return {1}
end
redis.call('HDEL', B, 'recharge_since_ms')
return {0}

-- sync_claim: may this worker call /token now?  At most once per
-- interval_ms per pool, unless force is '1'.  One shared timestamp per pool,
-- so restarts and many workers cannot hammer the free endpoint (SEED failure
-- 9).  next_allowed_ms: the wait when not claimed.
-- @keys pool
-- @policy
-- @call sync_claim(interval_ms, force) -> {claimed, next_allowed_ms}
local interval, bad = arg_int(op[1], 'interval_ms', 0, LIMIT)
bad = bad or preflight({S}, {{'SET', S, 'v'}})
if bad then
  return bad
end
if op[2] ~= '1' then
  local left = redis.call('PTTL', S)
  if left > 0 then
    return {0, left}
  end
end
if interval > 0 then
  redis.call('SET', S, fmt(now), 'PX', fmt(interval))
end
return {1, 0}

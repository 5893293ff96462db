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
-- After a new master (reground_wait in the prelude): a claim from before
-- the mark does not hold the re-grounding back, and one made now holds the
-- others only REGROUND_CLAIM_MS, in case its /token call fails.
local rg = int_or_nil(redis.pcall('HGET', B, 'reground_ms'))
if op[2] ~= '1' then
  local left = redis.call('PTTL', S)
  if left > 0 and rg and (int_or_nil(redis.call('GET', S)) or 0) < rg then
    left = 0
  end
  if left > 0 then
    return {0, left}
  end
end
if interval > 0 then
  redis.call('SET', S, fmt(now), 'PX',
             fmt(rg and math.min(interval, REGROUND_CLAIM_MS) or interval))
end
return {1, 0}

-- sync_claim: may this worker call /token now?  op[1] the minimum interval
-- (ms), op[2] '1' to force.  One shared timestamp per pool, so restarts and
-- many workers cannot hammer the free endpoint (SEED failure 9).
-- Reply: {claimed, ms until the next is allowed}
local interval = tonumber(op[1])
if op[2] ~= '1' then
  local left = redis.call('PTTL', S)
  if left > 0 then
    return {0, left}
  end
end
if interval > 0 then
  redis.call('SET', S, now, 'PX', interval)
end
return {1, 0}

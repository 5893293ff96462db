-- complete: op[1] grant id, op[2] consumed, op[3] tokens_left or '',
-- op[4] report timestamp (ms) or ''.
-- Reply: {tokens, report_applied, report_stale}
local id = op[1]
local consumed = tonumber(op[2])
local tokens_left = opt_arg(op[3])
local ts = opt_arg(op[4])

local s, est = take_lease(id)
if not s then
  return est -- the error reply
end
learn(s, est, consumed)

local applied, stale = 0, 0
if tokens_left then
  if stale_report(s, ts) then
    stale = 1
  else
    applied = 1
  end
end
if applied == 1 then
  -- The API's balance already includes this call; the others still in
  -- flight will be charged later.
  s.tokens = tokens_left - s.inflight_tokens
  s.report_ts = ts
else
  s.tokens = s.tokens - (consumed - est)
end
persist(s)
return {s.tokens, applied, stale}

-- complete: the call of grant `id` was made and cost `consumed`; with a
-- report (the API's tokens_left at report_ms; both '' when none) that is
-- not stale (stale_report in the prelude), the report sets the balance.
-- @keys pool
-- @policy
-- @call complete(id, consumed, tokens_left, report_ms)
--   -> {tokens, report_applied, report_stale}
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

-- release: the call of grant `id` was not made: its estimate comes back.
-- The reply is complete's (no report: report_applied and report_stale 0).
-- @keys pool
-- @policy
-- @call release(id) -> {tokens, report_applied, report_stale}
local id = op[1]
local bad = preflight({B, L, E}, WRITE_LEASES)
if bad then
  return bad
end

local s, est = take_lease(id)
if not s then
  return est -- the error reply
end
s.tokens = s.tokens + est
bad = persist(s)
if bad then
  return bad
end
drop_ended(s)
return {s.tokens, 0, 0}

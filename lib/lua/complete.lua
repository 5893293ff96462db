-- complete: the call of grant `id` was made and cost `consumed`; with a
-- report (the API's tokens_left at report_ms; both '' when none) that is
-- not stale (stale_report in the prelude), the report sets the balance.
--
-- `next_cost` ('' none) asks for `worker`'s place in line for its next
-- call (of next_cost in `class`, configured at `weight`): a worker that
-- had to wait for this call is back for another as soon as it is done
-- with this one, and would take its place then, only to be told when its
-- turn comes.  So the place is taken now, and its turn told in the reply
-- (`ticket`, and `wait_ms` from now), when a call now would have to wait
-- and its turn is within max_wait_ms: the next call sleeps until then and
-- is granted in one round trip.  Its attempts use the ticket as any
-- waiter's do (acquire.lua: a call of another cost keeps it, one of
-- another class does not); a worker that does not come back is absent
-- once its turn is past by the grace, and its ticket goes a lease TTL from
-- now.  A call that would be granted now takes nothing: the tokens stay
-- for whoever asks first.
-- @keys pool
-- @policy
-- @call complete(id, consumed, tokens_left, report_ms, worker, class,
--                weight, next_cost, max_wait_ms)
--   -> {tokens, report_applied, report_stale, ticket, wait_ms}
local id, worker, class = op[1], op[5], op[6]
local consumed, bad = arg_int(op[2], 'consumed', 0, LIMIT)
local tokens_left, ts, weight, next_cost, max_wait
if not bad then
  tokens_left, bad = arg_opt(op[3], 'tokens_left', -LIMIT, LIMIT)
end
if not bad then
  ts, bad = arg_opt(op[4], 'report_ms', 0, LIMIT)
end
if not bad and (tokens_left == nil) ~= (ts == nil) then
  bad = redis.error_reply('TKMARG tokens_left and report_ms go together ' ..
                          '(nothing was changed)')
end
if not bad then
  next_cost, bad = arg_opt(op[8], 'next_cost', 0, LIMIT)
end
if not bad and next_cost then
  class, weight, max_wait, bad = arg_place(class, op[7], op[9], false)
end
bad = bad or preflight({B, L, E}, WRITE_LEASES)
if not bad and next_cost then
  bad = preflight({Q}, WRITE_LINE)
end
if bad then
  return bad
end

local s, est = take_lease(id)
if not s then
  return est -- the error reply
end
learn(s, est, consumed)

local applied, stale = 0, 0
if tokens_left then
  if stale_report(s, ts, tokens_left - s.inflight_tokens,
                  s.tokens - (consumed - est)) then
    stale = 1
  else
    applied = 1
  end
end
if applied == 1 then
  -- The API's balance already includes this call; the others still in
  -- flight will be charged later.
  s.tokens = report_as_of(s, tokens_left, ts) - s.inflight_tokens
  s.report_ts = ts
else
  s.tokens = s.tokens - (consumed - est)
end
bad = persist(s)
if bad then
  return bad
end
drop_ended(s)

-- The next call's place (never one refill cannot bring, nor before a sync
-- grounds a new master's balance).
if not next_cost or reground_wait(s) or
   next_cost > capacity(s) - cfg.max_deficit then
  return {s.tokens, applied, stale, '', 0}
end
local line = load_line()
local me = new_ticket(line, class, next_cost, worker)
local order, pos = line_order(line, me)
local wait = -1
if not grant_now(s, order, pos, me, false) then
  wait = line_wait(s, order, pos, me)
end
if wait < 0 or wait > max_wait then
  return {s.tokens, applied, stale, '', 0}
end
local set = {}
wait = keep_ticket(set, me, weight, wait, true)
if #line.drop > 0 then
  redis.call('HDEL', Q, unpack(line.drop))
end
redis.call('HSET', Q, unpack(set))
return {s.tokens, applied, stale, me.id, wait}

-- acquire: reserve `cost` tokens for `worker` (its id), or say why not
-- (reason) and when it may succeed (retry_after_ms, -1 never).
--
-- The line (the prelude's "the line"): `class` and `weight` (the caller's
-- configuration of that class) place the call in it, `ticket` is the
-- caller's place from an earlier attempt, or the one complete took for
-- the worker's next call ('' none; a call of another cost keeps it, its
-- class charged what the call costs; one of another class does not).
-- `max_wait_ms` '' is a try: a denial writes nothing (but a recharge
-- transition), and a call behind present waiters is denied ('line_ahead')
-- whatever the balance.  Otherwise the caller waits up to max_wait_ms: a
-- grant goes to the head of the line, or to a call that may pass those
-- ahead of it (may_backfill in the prelude); a denied caller keeps (or
-- takes) its ticket and is told when its turn is expected, unless that is
-- later than max_wait_ms (then it leaves the line).  `ticket` in the reply is the
-- caller's ticket ('' none), `ahead` the present waiters before it.
-- `phase` ('' none) makes the attempt the worker's heartbeat too, as
-- heartbeat(worker, phase, 0, '', 0) would write it: of `phase` when it
-- is granted, of WAITING when it waits in line (a try's denial writes
-- nothing), so neither the call nor the wait needs a round trip of its own
-- to say so.
-- @keys pool
-- @policy
-- @call acquire(cost, worker, class, weight, ticket, max_wait_ms, phase)
--   -> {granted, id, tokens, reason, retry_after_ms, recharge_mode,
--       recharge_expired, ticket, ahead}
local cost, bad = arg_int(op[1], 'cost', 0, LIMIT)
local worker, class, ticket, phase = op[2], op[3], op[5], op[7]
local weight, max_wait
if not bad then
  class, weight, max_wait, bad = arg_place(class, op[4], op[6], true)
end
if not bad and ticket ~= '' and
   not (#ticket <= 40 and string.match(ticket, '^%d+%-%d+$')) then
  bad = redis.error_reply("TKMARG ticket '" .. string.sub(ticket, 1, 40) ..
                          "' is not one acquire hands out (nothing was " ..
                          'changed)')
end
if bad then
  return bad
end
local try = max_wait == nil
-- The phase of a waiter in line (wait.c's, for the heartbeats of a long
-- wait).
local WAITING = 'waiting for tokens'
local function beat(p)
  if phase ~= '' then
    record_beat(worker, 0, nil, p)
  end
end
bad = preflight({B, L, E}, {{'HSET', B, 'f', 'v'}, {'HDEL', B, 'f'},
                            {'HSET', L, 'f', 'v'}, {'HDEL', L, 'f'},
                            {'ZADD', E, '0', 'm'}, {'ZREM', E, 'm'}}) or
      preflight({Q}, WRITE_LINE)
if not bad and phase ~= '' then
  bad = preflight({H, W, U}, WRITE_BEAT)
end
if bad then
  return bad
end

local s, err = load({cost})
if err then
  return redis.error_reply(err)
end
if not s then
  -- No state (never synced, or reset while waiters held tickets).
  return {0, '', 0, 'need_sync', -1, 0, 0, '', 0}
end
refill(s)
expire(s)
local regrounding = reground_wait(s)
if regrounding then -- a new master: no grant before a sync
  return {0, '', s.tokens, 'need_sync', regrounding, recharge_on(s) and 1 or 0, 0,
          '', 0}
end

local cap = capacity(s)
if cost > cap - cfg.max_deficit then
  return redis.error_reply('TKMCOST cost ' .. fmt(cost) .. ' can never be granted: capacity ' ..
                           fmt(cap) .. ' minus max_deficit ' .. fmt(cfg.max_deficit) ..
                           ' allows at most ' .. fmt(cap - cfg.max_deficit))
end

local line = load_line()
-- What the line's key becomes (written last: nothing can fail then).
local set, del = {}, {}
for _, f in ipairs(line.drop) do
  del[#del + 1] = f
end
local me = line.by_id[ticket]
if me and me.class == class and me.cost ~= cost then
  -- The place complete took for the worker's next call, which costs
  -- otherwise: the call keeps it, and its class pays what it costs.
  local f = line.f[class]
  if f then
    f = f + math.ceil(cost * TAG_SCALE / weight) -
        math.ceil(me.cost * TAG_SCALE / weight)
    set[#set + 1], set[#set + 2] = 'f:' .. class, fmt(f)
  end
  me.cost = cost
elseif me and me.class ~= class then
  -- A place for a call of another class: it goes, and this call takes a
  -- place of its own.
  del[#del + 1] = 't:' .. me.id
  for i, k in ipairs(line.tickets) do
    if k == me then
      table.remove(line.tickets, i)
      break
    end
  end
  me = nil
end
local fresh = me == nil
if fresh then
  me = new_ticket(line, class, cost, worker)
else
  me.worker = ticket_worker(worker)
end
local order, pos = line_order(line, me)

local expired_now = 0
if recharge_timed_out(s) then
  -- A recharge transition: written even though the call may be denied
  -- (one write, after preflight: nothing left to fail).
  s.recharge_since_ms = nil
  redis.call('HDEL', B, 'recharge_since_ms')
  expired_now = 1
end

local function write_line(live)
  if live == 0 then
    redis.call('DEL', Q)
    return
  end
  if #del > 0 then
    redis.call('HDEL', Q, unpack(del))
  end
  if #set > 0 then
    redis.call('HSET', Q, unpack(set))
  end
end
local granted, why, extra = grant_now(s, order, pos, me, try)

if granted then
  if recharge_on(s) then
    s.recharge_since_ms = nil -- target reached: recharge ends, written below
  end
  s.tokens = s.tokens - cost
  if s.tokens < cfg.soft_floor then
    -- This grant proceeds; recharge starts for the calls after it.
    s.recharge_since_ms = now
  end
  s.seq = (s.seq or 0) + 1
  local id = fmt(s.seq) .. '-' .. fmt(now)
  s.inflight_tokens = s.inflight_tokens + cost
  s.leases = s.leases + 1
  add_class(s, cost, 1)
  local live = #line.tickets
  if line.fields > 0 then
    if fresh then
      charge_class(set, me, weight)
    else
      del[#del + 1] = 't:' .. me.id
      live = live - 1
    end
    if pos == 1 and me.start > line.vt then
      set[#set + 1], set[#set + 2] = 'vt', fmt(me.start)
    end
  end
  bad = persist(s)
  if bad then
    return bad
  end
  redis.call('HSET', L, id, fmt(cost) .. '|' .. worker)
  redis.call('ZADD', E, fmt(now + cfg.lease_ttl_ms), id)
  if line.fields > 0 then
    write_line(live)
  end
  beat(phase)
  return {1, id, s.tokens, 'ok', 0, recharge_on(s) and 1 or 0, expired_now, '',
          0}
end

local reason = why
if pos > 1 then
  reason = 'line_ahead'
end
local wait = line_wait(s, order, pos, me)
local mode = recharge_on(s) and 1 or 0
if try then
  return {0, '', s.tokens, reason, wait, mode, expired_now, '', pos - 1}
end
local live = #line.tickets
local keep = wait >= 0 and wait <= max_wait
if keep then
  wait = keep_ticket(set, me, weight, wait, fresh)
  if fresh then
    live = live + 1
  end
elseif not fresh then
  del[#del + 1] = 't:' .. me.id
  live = live - 1
end
if keep or line.fields > 0 then
  write_line(live)
end
if keep then
  beat(WAITING)
end
return {0, '', s.tokens, reason, wait, mode, expired_now, keep and me.id or '',
        pos - 1}

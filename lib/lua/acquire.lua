-- acquire: reserve `cost` tokens for `worker` (its id), or say why not
-- (reason) and when refill may cure the denial (retry_after_ms, -1 never).
-- @keys pool
-- @policy
-- @call acquire(cost, worker)
--   -> {granted, id, tokens, reason, retry_after_ms, recharge_mode,
--       recharge_expired}
local cost, bad = arg_int(op[1], 'cost', 0, LIMIT)
if bad then
  return bad
end
local worker = op[2]
bad = preflight({B, L, E}, {{'HSET', B, 'f', 'v'}, {'HDEL', B, 'f'},
                            {'HSET', L, 'f', 'v'}, {'HDEL', L, 'f'},
                            {'ZADD', E, '0', 'm'}, {'ZREM', E, 'm'}})
if bad then
  return bad
end

local s, err = load({cost})
if err then
  return redis.error_reply(err)
end
if not s then
  return {0, '', 0, 'need_sync', -1, 0, 0}
end
refill(s)
expire(s)
local regrounding = reground_wait(s)
if regrounding then -- a new master: no grant before a sync
  return {0, '', s.tokens, 'need_sync', regrounding, recharge_on(s) and 1 or 0, 0}
end

local cap = capacity(s)
if cost > cap - cfg.max_deficit then
  return redis.error_reply('TKMCOST cost ' .. fmt(cost) .. ' can never be granted: capacity ' ..
                           fmt(cap) .. ' minus max_deficit ' .. fmt(cfg.max_deficit) ..
                           ' allows at most ' .. fmt(cap - cfg.max_deficit))
end

local expired_now = 0
if recharge_timed_out(s) then
  -- A recharge transition: written even though the call may be denied
  -- (one write, after preflight: nothing left to fail).
  s.recharge_since_ms = nil
  redis.call('HDEL', B, 'recharge_since_ms')
  expired_now = 1
end

local function deny(reason, needed)
  local wait = wait_for(s, needed)
  if reason == 'recharging' then
    local left = s.recharge_since_ms + cfg.recharge_timeout_ms - now
    if wait < 0 or left < wait then
      wait = math.max(left, 1)
    end
  end
  return {0, '', s.tokens, reason, wait, recharge_on(s) and 1 or 0, expired_now}
end

if s.tokens < cfg.min_start then
  return deny('insufficient', cfg.min_start)
end
if recharge_on(s) then
  local target = cfg.recharge_target
  if cost <= cfg.low_cost_max then
    target = cfg.low_cost_target
  end
  target = math.min(target, cap)
  if s.tokens < target then
    return deny('recharging', target)
  end
  s.recharge_since_ms = nil -- target reached: recharge ends, written below
end
-- The deficit limit holds for what the calls may really cost: this one at
-- its estimate's known error (but never so much that it could never pass)
-- and those in flight at their reserve.
local extra = math.min(excess(s, cost), cap - cfg.max_deficit - cost)
local held = reserve(s) + extra
if s.tokens - cost - held < cfg.max_deficit then
  -- Refill need only bring what the calls in flight do not hold: their
  -- completions free their reserve, sooner than refill (a Keepa minute).
  local reply = deny('deficit_limit', cfg.max_deficit + cost + extra)
  if reply[5] == 0 then
    -- Only that reserve blocks: look again within a second (or the tick).
    reply[5] = math.min(refill_in(s), 1000)
  end
  if s.next_change and s.next_change > now and
     (reply[5] < 0 or s.next_change - now < reply[5]) then
    -- A held outlier stops counting then.
    reply[5] = s.next_change - now
  end
  return reply
end

s.tokens = s.tokens - cost
if s.tokens < cfg.soft_floor and not recharge_on(s) then
  -- This grant proceeds; recharge starts for the calls after it.
  s.recharge_since_ms = now
end
s.seq = (s.seq or 0) + 1
local id = fmt(s.seq) .. '-' .. fmt(now)
s.inflight_tokens = s.inflight_tokens + cost
s.leases = s.leases + 1
add_class(s, cost, 1)
bad = persist(s)
if bad then
  return bad
end
redis.call('HSET', L, id, fmt(cost) .. '|' .. worker)
redis.call('ZADD', E, fmt(now + cfg.lease_ttl_ms), id)
return {1, id, s.tokens, 'ok', 0, recharge_on(s) and 1 or 0, expired_now}

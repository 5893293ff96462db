-- The recovery guard, shared by every monitor and the CLI of a pool.
-- The `guard` key set, after the pool's: KEYS[9] guard hash, KEYS[10]
-- actions sorted set (action id -> time), KEYS[11] the actor lease (string
-- holding a random token), KEYS[12] the audit stream (capped).
-- op[1] the command (the library sends it for each call declared below),
-- op[2] the host that asks; the rest depends on the command.
-- @keys pool guard
-- @policy
local R, A, LEASE, LOG = KEYS[9], KEYS[10], KEYS[11], KEYS[12]
local cmd, host = op[1], op[2]
local pool = string.match(B, '{(.-)}')
local AUDIT_MAX = 1000
local QUIET_MS = 60000

-- Every command but status writes: the guard's keys and the commands it
-- may send are checked before the first write (see the prelude), and so
-- is the audit stream's last entry (XADD '*' fails after the largest id).
do
  local writes = {}
  if cmd ~= 'status' then
    writes = {{'HSET', R, 'f', 'v'}, {'HDEL', R, 'f'}, {'ZADD', A, '0', 'm'},
              {'ZREMRANGEBYSCORE', A, '0', '0'}, {'DEL', A},
              {'SET', LEASE, 'v'}, {'DEL', LEASE},
              {'XADD', LOG, 'MAXLEN', '~', '1000', '*', 'f', 'v'}}
  end
  local bad = preflight({R, A, LEASE, LOG}, writes)
  if not bad and cmd ~= 'status' then
    local last = redis.call('XREVRANGE', LOG, '+', '-', 'COUNT', 1)[1]
    if last and last[1] == '18446744073709551615-18446744073709551615' then
      bad = redis.error_reply('TKMSTATE the audit stream ' .. LOG ..
                              ' holds the largest id: written by something ' ..
                              'else (nothing was changed)')
    end
  end
  if bad then
    return bad
  end
end

-- The numbers of each command (op[i], its name), checked before anything
-- is written.
local NUMBERS = {
  decide = {{7, 'cooldown_ms', 0}, {8, 'max_actions', 0}, {9, 'window_ms', 0},
            {10, 'lease_ms', 1}, {11, 'grace_ms', 0}},
  finish = {{6, 'exit', -LIMIT}, {7, 'duration_ms', -LIMIT}},
  observe = {{4, 'heartbeat_age_ms', -LIMIT}, {5, 'window_ms', 0}},
  status = {{3, 'cooldown_ms', 0}, {4, 'window_ms', 0}},
  pause = {{4, 'duration_ms', 0}},
}
for _, n in ipairs(NUMBERS[cmd] or {}) do
  local v, bad = arg_int(op[n[1]], n[2], n[3], LIMIT)
  if bad then
    return bad
  end
  op[n[1]] = v
end

local function num(field)
  return tonumber(redis.call('HGET', R, field) or '0') or 0
end

-- The kill switch, on until resumed or (paused_until_ms > 0) until then.
local function paused_left()
  if num('paused') ~= 1 then
    return 0
  end
  local until_ms = num('paused_until_ms')
  if until_ms == 0 then
    return -1 -- until resumed
  end
  return math.max(0, until_ms - now)
end

local function paused()
  return paused_left() ~= 0 and 1 or 0
end

-- Every decision goes to the stream; a skip that repeats the previous one
-- within a minute is counted instead of appended.
local function audit(decision, fields, repeatable)
  if repeatable then
    local last = redis.call('HMGET', R, 'audit_decision', 'audit_ms')
    if last[1] == decision and now - (tonumber(last[2]) or 0) < QUIET_MS then
      redis.call('HSET', R, 'audit_repeats', num('audit_repeats') + 1)
      return
    end
  end
  local entry = {'time', now, 'host', host, 'pool', pool, 'decision', decision,
                 'repeats', num('audit_repeats')}
  for i = 1, #fields, 2 do
    if fields[i + 1] ~= nil and fields[i + 1] ~= '' then
      entry[#entry + 1] = fields[i]
      entry[#entry + 1] = fields[i + 1]
    end
  end
  redis.call('XADD', LOG, 'MAXLEN', '~', AUDIT_MAX, '*', unpack(entry))
  redis.call('HSET', R, 'audit_decision', decision, 'audit_ms', now, 'audit_repeats', 0)
end

local function cooldown_left(cooldown_ms, window_ms, n)
  local last = num('last_action_ms')
  if last == 0 then
    return 0
  end
  -- The cooldown doubles with each action still inside the window.
  local eff = cooldown_ms * 2 ^ math.max(0, n - 1)
  if eff > window_ms then
    eff = window_ms
  end
  return math.max(0, last + eff - now)
end

-- Whether to act now (decision 'act': the lease is held with `token`);
-- every decision is audited.  Times in ms; dry_run '1' or '0'; mode
-- 'stalled' or 'manual', or 'unknown' / 'shared_cause' (never act: the
-- decision is the mode).
-- @call recovery.decide(host, reason, inputs, argv, token, cooldown_ms,
--   max_actions, window_ms, lease_ms, grace_ms, dry_run, mode)
--   -> {decision, action_id, cooldown_left_ms, actions_in_window, escalated}
if cmd == 'decide' then
  local reason, inputs, argv = op[3], op[4], op[5]
  local token, cooldown, max_actions = op[6], tonumber(op[7]), tonumber(op[8])
  local window, lease_ms, grace = tonumber(op[9]), tonumber(op[10]), tonumber(op[11])
  local dry, mode = op[12] == '1', op[13]
  redis.call('ZREMRANGEBYSCORE', A, '-inf', '(' .. (now - window))
  local n = redis.call('ZCARD', A)
  local left = cooldown_left(cooldown, window, n)
  local decision, id = nil, ''
  if mode == 'unknown' or mode == 'shared_cause' then
    decision = mode
  elseif paused() == 1 then
    decision = 'paused'
  elseif num('escalated') == 1 then
    decision = 'escalated'
  elseif num('grace_until_ms') > now then
    decision = 'grace'
  elseif left > 0 then
    decision = 'cooldown'
  elseif n >= max_actions then
    redis.call('HSET', R, 'escalated', 1, 'escalated_ms', now)
    redis.call('HDEL', R, 'clear_since_ms')
    decision = 'limit'
  elseif dry then
    decision = 'dry_run'
    id = 'dry-' .. now
    -- A rehearsal follows the same cadence as real actions.
    redis.call('ZADD', A, now, id)
    redis.call('HSET', R, 'last_action_ms', now)
  elseif not redis.call('SET', LEASE, token, 'NX', 'PX', lease_ms) then
    decision = 'lease'
  else
    decision = 'act'
    id = fmt(now) .. '-' .. fmt(num('seq') + 1)
    redis.call('HSET', R, 'seq', num('seq') + 1)
    redis.call('ZADD', A, now, id)
    redis.call('HSET', R, 'last_action_ms', now, 'grace_until_ms', now + grace,
               'pending_id', id)
    redis.call('HSET', R, 'total', num('total') + 1)
  end
  local quiet = decision ~= 'act' and decision ~= 'dry_run' and decision ~= 'limit'
  audit(decision, {'reason', reason, 'inputs', inputs, 'argv', argv,
                   'action_id', id}, quiet)
  return {decision, id, left, n, num('escalated')}
end

-- The action ended: release the lease if `token` still holds it, audit.
-- @call recovery.finish(host, action_id, token, outcome, exit, duration_ms,
--   output) -> {released}
if cmd == 'finish' then
  local id, token, outcome = op[3], op[4], op[5]
  local released = 0
  if redis.call('GET', LEASE) == token then
    redis.call('DEL', LEASE)
    released = 1
  end
  if outcome == 'failed' or outcome == 'timeout' then
    -- Counted once: the grace verdict does not count it again.
    redis.call('HSET', R, 'failed', num('failed') + 1)
    redis.call('HSET', R, 'failed_id', id)
  end
  audit('finished', {'action_id', id, 'outcome', outcome, 'exit', op[6],
                     'duration_ms', op[7], 'output', op[8]}, false)
  return {released}
end

-- What the monitor saw this read: state 'clear', 'stalled' or 'unknown',
-- the freshest heartbeat's age (ms, -1 none).  Judges the pending action
-- after its grace and de-escalates after a clear window.
-- @call recovery.observe(host, state, heartbeat_age_ms, window_ms)
--   -> {event, escalated, paused, total, failed}
if cmd == 'observe' then
  local state, hb_age, window = op[3], tonumber(op[4]), tonumber(op[5])
  local event = ''
  local pending = redis.call('HGET', R, 'pending_id')
  if pending and num('grace_until_ms') <= now then
    local since = now - num('last_action_ms')
    redis.call('HDEL', R, 'pending_id')
    if hb_age >= 0 and hb_age < since then
      event = 'recovered'
      audit('recovered', {'action_id', pending}, false)
    else
      event = 'failed'
      if redis.call('HGET', R, 'failed_id') ~= pending then
        redis.call('HSET', R, 'failed', num('failed') + 1)
      end
      audit('failed', {'action_id', pending,
                       'reason', 'no heartbeat resumed within the grace period'},
            false)
    end
  end
  if num('escalated') == 1 then
    if state == 'clear' then
      local since = num('clear_since_ms')
      if since == 0 then
        redis.call('HSET', R, 'clear_since_ms', now)
      elseif now - since >= window then
        redis.call('HSET', R, 'escalated', 0)
        redis.call('HDEL', R, 'clear_since_ms')
        event = 'deescalated'
        audit('deescalated', {'reason', 'the stall stayed clear for a full window'}, false)
      end
    else
      redis.call('HDEL', R, 'clear_since_ms')
    end
  end
  return {event, num('escalated'), paused(), num('total'), num('failed')}
end

-- `total` counts the actions taken, `failed` those of them that failed
-- (exit status, deadline, or no heartbeat within the grace), each once.
-- @call recovery.status(host, cooldown_ms, window_ms)
--   -> {paused, escalated, escalated_ms, last_action_ms, actions_in_window,
--       cooldown_left_ms, total, failed, grace_left_ms, lease_ttl_ms, now,
--       paused_left_ms}
if cmd == 'status' then
  local cooldown, window = tonumber(op[3]), tonumber(op[4])
  local n = redis.call('ZCOUNT', A, now - window, '+inf')
  return {paused(), num('escalated'), num('escalated_ms'), num('last_action_ms'),
          n, cooldown_left(cooldown, window, n), num('total'), num('failed'),
          math.max(0, num('grace_until_ms') - now), redis.call('PTTL', LEASE), now,
          math.max(0, paused_left())}
end

-- @call recovery.reset(host, reason) -> {ok}
if cmd == 'reset' then
  redis.call('HSET', R, 'escalated', 0, 'grace_until_ms', 0)
  redis.call('HDEL', R, 'clear_since_ms', 'pending_id')
  redis.call('DEL', A)
  audit('reset', {'reason', op[3]}, false)
  return {1}
end

-- pause: for duration_ms, or until resumed when 0.
-- @call recovery.pause(host, reason, duration_ms) -> {ok}
-- @call recovery.resume(host, reason) -> {ok}
if cmd == 'pause' or cmd == 'resume' then
  local ms = cmd == 'pause' and tonumber(op[4]) or 0
  redis.call('HSET', R, 'paused', cmd == 'pause' and 1 or 0,
             'paused_until_ms', ms > 0 and now + ms or 0)
  audit(cmd, {'reason', op[3]}, false)
  return {1}
end

return redis.error_reply('TKMSTATE unknown recovery command ' .. tostring(cmd))

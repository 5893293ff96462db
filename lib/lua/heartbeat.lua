-- heartbeat: `worker` is alive doing `phase`; busy_ms > 0 declares it busy
-- that long (0: not busy; a plain heartbeat ends an earlier busy period).
-- `error` ("redis", "api", or "") is a failure the worker met error_age_ms
-- ago: kept in its record (until a newer one) as the stall rule's evidence
-- of a shared cause.  The record is "busy_until_ms|error_ms:error|phase".
-- @keys pool
-- @policy
-- @call heartbeat(worker, phase, busy_ms, error, error_age_ms)
--   -> {now, busy_until_ms}
local worker, phase, err = op[1], op[2], op[4]
-- A busy period of up to a year, an error up to ten years old.
local busy, bad = arg_int(op[3], 'busy_ms', 0, 31536000000)
local err_age
if not bad then
  err_age, bad = arg_int(op[5], 'error_age_ms', -LIMIT, LIMIT)
end
if not bad and not string.match(err, '^[a-z]*$') then
  bad = redis.error_reply("TKMARG error '" .. string.sub(err, 1, 40) ..
                          "' is not a lower-case word (nothing was changed)")
end
bad = bad or preflight({H, W, U}, WRITE_BEAT)
if bad then
  return bad
end
local until_ms = 0
if busy > 0 then
  until_ms = now + busy
end
if err ~= '' then
  err = fmt(now - math.min(now, math.max(0, err_age))) .. ':' .. err
else
  err = nil -- the record keeps the one it holds
end
record_beat(worker, until_ms, err, phase)
return {now, until_ms}

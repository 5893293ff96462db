#!lua flags=no-writes
-- The audit trail, newest first: for each entry its stream id, its number
-- of fields, then the field, value pairs recovery.lua's audit() wrote.
-- Only the audit stream is read (the guard's KEYS[4]): no pool keys, no
-- policy, so the prelude is not included and the count is ARGV[1].
-- @keys guard
-- @call recovery_log(count) -> {...}
local count = tonumber(ARGV[1])
if not count or count < 0 or count > 1e9 or count ~= math.floor(count) then
  return redis.error_reply("TKMARG count '" .. tostring(ARGV[1]) .. "' is not a whole number")
end
local rows = redis.call('XREVRANGE', KEYS[4], '+', '-', 'COUNT', count)
local reply = {}
for _, row in ipairs(rows) do
  reply[#reply + 1] = row[1]
  reply[#reply + 1] = #row[2] / 2
  for _, v in ipairs(row[2]) do
    reply[#reply + 1] = v
  end
end
return reply

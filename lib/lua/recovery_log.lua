-- The audit trail, newest first.  op[1] how many entries.
-- Reply: {id, nfields, field, value, ..., id, nfields, ...}
local rows = redis.call('XREVRANGE', KEYS[11], '+', '-', 'COUNT', tonumber(op[1]))
local reply = {}
for _, row in ipairs(rows) do
  reply[#reply + 1] = row[1]
  reply[#reply + 1] = #row[2] / 2
  for _, v in ipairs(row[2]) do
    reply[#reply + 1] = v
  end
end
return reply

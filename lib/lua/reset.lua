-- reset: op[1] the pool's key pattern (tokenmgr:{P}:*).  Deletes every
-- key of this pool and nothing else.  Reply: {deleted}
local deleted = 0
local cursor = '0'
repeat
  local r = redis.call('SCAN', cursor, 'MATCH', op[1], 'COUNT', 1000)
  cursor = r[1]
  if #r[2] > 0 then
    deleted = deleted + redis.call('DEL', unpack(r[2]))
  end
until cursor == '0'
return {deleted}

-- release: op[1] grant id.  Reply: {tokens, 0, 0}
local id = op[1]

local s, est = take_lease(id)
if not s then
  return est -- the error reply
end
s.tokens = s.tokens + est
persist(s)
return {s.tokens, 0, 0}

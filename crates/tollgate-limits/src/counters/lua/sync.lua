-- Brings this instance's leases up to date in one round trip (see admit.lua for how they are
-- granted). KEYS: two per entry, as for admit.lua.
-- ARGV: now_ms, ttl_ms, instances, then seven per entry:
--   'B' (a budget lease), member, settled use to add, in flight (reserved by calls admitted from
--   the lease and not settled), keep (1 to keep the block), block, max: the use is added, and the
--   lease then holds the whole block again if the headroom left by everything else is still more
--   than 2 x block x instances (else only what its calls in flight reserve, 0 removes it);
--   'Z' (unused permits of a request lease), member prefix, first, last, 0, 0, 0: they are removed.
-- Returns three per entry: kept (1/0), settled use, reserved (B); 0, 0, 0 (Z).
local function fmt(n) return string.format('%d', n) end
local now = tonumber(ARGV[1])
local ttl = tonumber(ARGV[2])
local instances = tonumber(ARGV[3])
local H, W = 3, 7
local n = (#ARGV - H) / W
local out = {}
for i = 1, n do
  local b = H + (i - 1) * W
  local typ, m = ARGV[b + 1], ARGV[b + 2]
  local a1, a2, keep, block, max = tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), ARGV[b + 5] == '1', tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
  local k1, k2 = KEYS[2 * i - 1], KEYS[2 * i]
  if typ == 'Z' then
    local members = {}
    for j = a1, a2 do
      members[#members + 1] = m .. j
      if #members == 1000 then redis.call('ZREM', k1, unpack(members)); members = {} end
    end
    if #members > 0 then redis.call('ZREM', k1, unpack(members)) end
    out[#out + 1] = 0; out[#out + 1] = 0; out[#out + 1] = 0
  else
    local used
    if a1 ~= 0 then used = redis.call('HINCRBY', k1, 'used', fmt(a1))
    else used = tonumber(redis.call('HGET', k1, 'used') or '0') end
    local old = tonumber(redis.call('HGET', k1, 'r:' .. m) or '0')
    local reserved = tonumber(redis.call('HGET', k1, 'reserved') or '0')
    local others = reserved - old
    local held, kept = a2, 0
    if keep and max - used - others > 2 * block * instances then
      held, kept = math.max(block, a2), 1
    end
    if held ~= old then redis.call('HINCRBY', k1, 'reserved', fmt(held - old)) end
    if held > 0 then
      redis.call('HSET', k1, 'r:' .. m, fmt(held))
      redis.call('ZADD', k2, fmt(now + ttl), m)
    elseif old > 0 then
      redis.call('HDEL', k1, 'r:' .. m)
      redis.call('ZREM', k2, m)
    end
    out[#out + 1] = kept; out[#out + 1] = used; out[#out + 1] = others + held
  end
end
return out

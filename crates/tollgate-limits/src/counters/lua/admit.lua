-- Admits one call against every counter of its limits, all or nothing, in one round trip.
-- KEYS: two per check (the second is used by budgets only).
-- ARGV: mode ('admit' or 'peek'), now_ms, member, ttl_ms, instances, lease_member, then seven per
--   check: type (R requests, T tokens per minute, C concurrency, B budget), hard (1/0), max,
--   amount, param (R: window ms; B: period end ms or -1; others: 0), lease (the block this
--   instance asks for: R permits, B tokens or micro-USD; 0 for none), lease_life (R: ms).
-- A lease is granted only where the headroom left after the call is more than
-- 2 x lease x instances, so near a limit every call is decided here, one at a time. An R lease is
-- `lease` members scored at now + lease_life (counted as if used at the lease's end, so they never
-- leave the window early); a B lease is one reservation of `lease` held by lease_member..':'..i.
-- Returns {0, used, reserved, reset_ms, granted, ...} when counted (or peeked),
-- {1, index, retry_ms, used} when a hard check refuses (nothing counted), {2, index} when a budget
-- must be seeded first.
-- Computed numbers go back to Redis through fmt(), since Lua prints large numbers as 1e+15.
local function fmt(n) return string.format('%d', n) end
local mode = ARGV[1]
local now = tonumber(ARGV[2])
local member = ARGV[3]
local ttl = tonumber(ARGV[4])
local instances = tonumber(ARGV[5])
local lease_member = ARGV[6]
local H = 6
local W = 7
local n = (#ARGV - H) / W
local states = {}

for i = 1, n do
  local b = H + (i - 1) * W
  local typ, hard, max, amt, p = ARGV[b + 1], ARGV[b + 2] == '1', tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
  local k1, k2 = KEYS[2 * i - 1], KEYS[2 * i]
  local used, reserved, reset, fits, retry = 0, 0, -1, true, -1
  if typ == 'R' then
    redis.call('ZREMRANGEBYSCORE', k1, '-inf', fmt(now - p))
    used = redis.call('ZCARD', k1)
    local oldest = redis.call('ZRANGE', k1, 0, 0, 'WITHSCORES')
    if oldest[2] then reset = tonumber(oldest[2]) + p - now end
    if used >= max then
      fits = false
      local e = redis.call('ZRANGE', k1, used - max, used - max, 'WITHSCORES')
      if e[2] then retry = tonumber(e[2]) + p - now end
    end
  elseif typ == 'T' then
    local sec = math.floor(now / 1000)
    local all = redis.call('HGETALL', k1)
    local buckets = {}
    for j = 1, #all, 2 do
      local s = tonumber(all[j])
      if s <= sec - 60 then
        redis.call('HDEL', k1, all[j])
      else
        local v = tonumber(all[j + 1])
        used = used + v
        buckets[#buckets + 1] = {s, v}
      end
    end
    table.sort(buckets, function(x, y) return x[1] < y[1] end)
    if buckets[1] then reset = (buckets[1][1] + 60) * 1000 - now end
    if used + amt > max then
      fits = false
      if amt <= max then
        local need, freed = used + amt - max, 0
        for _, bk in ipairs(buckets) do
          freed = freed + bk[2]
          if freed >= need then retry = (bk[1] + 60) * 1000 - now; break end
        end
      end
    end
  elseif typ == 'C' then
    redis.call('ZREMRANGEBYSCORE', k1, '-inf', fmt(now))
    used = redis.call('ZCARD', k1)
    if used >= max then fits = false; retry = 1000 end
  elseif typ == 'B' then
    local u = redis.call('HGET', k1, 'used')
    if not u then return {2, i} end
    used = tonumber(u)
    local expired = redis.call('ZRANGEBYSCORE', k2, '-inf', fmt(now))
    for _, r in ipairs(expired) do
      local a = redis.call('HGET', k1, 'r:' .. r)
      if a then
        redis.call('HINCRBY', k1, 'reserved', '-' .. a)
        redis.call('HDEL', k1, 'r:' .. r)
      end
    end
    if #expired > 0 then redis.call('ZREMRANGEBYSCORE', k2, '-inf', fmt(now)) end
    reserved = tonumber(redis.call('HGET', k1, 'reserved') or '0')
    if p >= 0 then reset = p - now end
    local taken = used + reserved
    if taken >= max or taken + amt > max then
      fits = false
      if p >= 0 then retry = p - now end
    end
  end
  if (not fits) and hard and mode == 'admit' then return {1, i, retry, used} end
  states[i] = {used, reserved, reset, 0}
end

if mode == 'admit' then
  for i = 1, n do
    local b = H + (i - 1) * W
    local typ, max, amt, p = ARGV[b + 1], tonumber(ARGV[b + 3]), tonumber(ARGV[b + 4]), tonumber(ARGV[b + 5])
    local lease, life = tonumber(ARGV[b + 6]), tonumber(ARGV[b + 7])
    local k1, k2 = KEYS[2 * i - 1], KEYS[2 * i]
    local st = states[i]
    if typ == 'R' then
      redis.call('ZADD', k1, fmt(now), member)
      st[1] = st[1] + 1
      if st[3] < 0 then st[3] = p end
      if lease > 0 and max - st[1] > 2 * lease * instances then
        local score = fmt(now + life)
        local prefix = lease_member .. ':' .. i .. ':'
        local args = {}
        for j = 1, lease do
          args[#args + 1] = score
          args[#args + 1] = prefix .. j
          if #args == 1000 then redis.call('ZADD', k1, unpack(args)); args = {} end
        end
        if #args > 0 then redis.call('ZADD', k1, unpack(args)) end
        st[1] = st[1] + lease
        st[4] = lease
      end
      -- Leased members are scored up to lease_life ahead: the key outlives them.
      redis.call('PEXPIRE', k1, fmt(p + life))
    elseif typ == 'T' then
      if amt > 0 then
        local sec = math.floor(now / 1000)
        redis.call('HINCRBY', k1, fmt(sec), ARGV[b + 4])
        redis.call('PEXPIRE', k1, 61000)
        st[1] = st[1] + amt
        if st[3] < 0 then st[3] = (sec + 60) * 1000 - now end
      end
    elseif typ == 'C' then
      redis.call('ZADD', k1, fmt(now + ttl), member)
      redis.call('PEXPIRE', k1, fmt(ttl))
      st[1] = st[1] + 1
    elseif typ == 'B' then
      if amt > 0 then
        redis.call('HINCRBY', k1, 'reserved', ARGV[b + 4])
        redis.call('HSET', k1, 'r:' .. member, ARGV[b + 4])
        redis.call('ZADD', k2, fmt(now + ttl), member)
        if p >= 0 then redis.call('PEXPIREAT', k2, fmt(p + 604800000)) end
        st[2] = st[2] + amt
      end
      if lease > 0 and max - st[1] - st[2] > 2 * lease * instances then
        local m = lease_member .. ':' .. i
        redis.call('HINCRBY', k1, 'reserved', fmt(lease))
        redis.call('HSET', k1, 'r:' .. m, fmt(lease))
        redis.call('ZADD', k2, fmt(now + ttl), m)
        if p >= 0 then redis.call('PEXPIREAT', k2, fmt(p + 604800000)) end
        st[2] = st[2] + lease
        st[4] = lease
      end
    end
  end
end

local out = {0}
for i = 1, n do
  out[#out + 1] = states[i][1]
  out[#out + 1] = states[i][2]
  out[#out + 1] = states[i][3]
  out[#out + 1] = states[i][4]
end
return out

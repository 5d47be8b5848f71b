"""Lua fragments shared by several scripts: each defines a local function that a script
prepends to its body (`events/store/scripts.py` joins them).
"""

# The Redis server's clock in ms: every expiry and age is on it, never on a client's.
NOW_MS_LUA = """
local function now_ms()
  local now = redis.call('TIME')
  return tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
end
"""

# Entry ids as (ms, seq) number pairs; Lua numbers are doubles, exact below 2^53, and
# millisecond timestamps stay far below that.
POSITION_LUA = """
local function position(id)
  if not id or id == 'BEGIN' then return 0, 0 end
  local ms, seq = string.match(id, '^(%d+)-(%d+)$')
  return tonumber(ms), tonumber(seq)
end
local function after(ams, aseq, bms, bseq)
  return ams > bms or (ams == bms and aseq > bseq)
end
"""

# The partition's group, built if missing from the committed offset: Redis's if it kept
# one, else the database's (never from `$`). An existing group (BUSYGROUP) is kept: it
# knows what was delivered and pending. A new group has nothing pending: the records of
# what was sent and charged (`forget`, a list of keys) are of the lost one, and go.
# Returns the committed offset and whether the group was created now.
GROUP_LUA_FUNCTION = """
local function ensure_group(log, committed_key, group, db_offset, forget)
  redis.call('SET', committed_key, db_offset, 'NX')
  local committed = redis.call('GET', committed_key)
  local start = committed == 'BEGIN' and '0' or committed
  local made = redis.pcall('XGROUP', 'CREATE', log, group, start, 'MKSTREAM')
  local created = not (type(made) == 'table' and made.err)
  if created then redis.call('DEL', unpack(forget)) end
  return committed, created
end
"""

# Give up on an entry delivered too often, so that the partition moves on: set it aside as
# a dead letter (a record on the partition's dead-letter stream, which the `dead_letters` job
# stores in the database), or, when `skip` (the subscription's policy "skip", Nakadi's
# SKIP_EVENT), only count it (`skipped`, a counter key); acked either way.
DEAD_LUA = """
local function dead(key, group, log, entry, deliveries, reason, skipped, skip)
  if skip then
    redis.call('INCR', skipped)
  else
    redis.call('XADD', key, '*', 'o', entry[1], 'n', deliveries, 'why', reason, unpack(entry[2]))
  end
  redis.call('XACK', log, group, entry[1])
end
"""

# Trim a partition by length and by age, approximately: XTRIM with `~` drops only whole
# radix-tree nodes (cheap; a few entries past a limit may stay) and at most 100 nodes'
# worth of entries per call (10,000 by default: a larger backlog goes over several calls).
# Age is measured on the Redis server's clock, never a client's. Defines
# trim(key, max events, max age in ms), 0 disabling a limit; it returns how many entries
# went (uses now_ms). Publishing trims as it appends; the retention job trims
# the partitions nobody publishes to.
TRIM_LUA_FUNCTION = """
local function trim(key, max_events, max_age)
  local trimmed = 0
  if max_events > 0 then
    trimmed = trimmed + redis.call('XTRIM', key, 'MAXLEN', '~', max_events)
  end
  if max_age > 0 then
    local floor = now_ms() - max_age
    if floor > 0 then trimmed = trimmed + redis.call('XTRIM', key, 'MINID', '~', floor) end
  end
  return trimmed
end
"""

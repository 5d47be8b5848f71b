"""Lua fragments shared by the delivery scripts of ordered and shared subscriptions and of
the reclaim job: each defines a local function that a script prepends to its body.
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

# Set an entry aside as a dead letter: a record on the partition's dead-letter stream (the
# `dead_letters` job stores it in the database), then acked so that the partition moves on.
DEAD_LUA = """
local function dead(key, group, log, entry, deliveries, reason)
  redis.call('XADD', key, '*', 'o', entry[1], 'n', deliveries, 'why', reason, unpack(entry[2]))
  redis.call('XACK', log, group, entry[1])
end
"""

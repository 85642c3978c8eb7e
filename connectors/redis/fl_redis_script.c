/*
 * fl_redis_script.c - the Redis sink's two Lua scripts.
 *
 * The flush script applies one chunk of a batch (fl_redis_batch.c lays out
 * its arguments) and moves the chunk's offsets in the marker, as one
 * atomic step. It checks before its first write: the marker exists and has
 * the epoch this instance claimed under (else FLLOST: Redis lost what it
 * held), every part's generation is the claimed one (else FLFENCED), and
 * every part's offset is the one the chunk starts from. A chunk whose
 * offsets are already in place was committed by an attempt whose reply got
 * lost: the script writes nothing and says DUP. Validation happened in C,
 * so the operations cannot fail on their input; a key of the wrong type
 * (written by someone else) would stop the script with its earlier writes
 * applied and the offsets unmoved, and a retry re-applies idempotent
 * writes only.
 *
 * Feed insertions: only members that are not in the feed are written; one
 * above the feed's highest score cannot be in it, the others are looked up
 * (ZMSCORE for a few, one ZRANGE of the whole feed for more). In a listpack
 * feed every ZADD member costs two scans of the feed (Redis 7.0's zzlFind,
 * then zzlInsert from the lowest score), so k new members cost O(k * n).
 * From BULK new members on, they go instead into a scratch set created as
 * a skiplist (its first member is longer than zset-max-listpack-value),
 * ZUNIONSTORE merges it with the feed in O(n + k) and writes a listpack
 * again when the result fits, and the trimmed result is RENAMEd over the
 * feed: a backlog in key order brings hundreds of entries per user and
 * chunk, ~5 us of Redis CPU per entry instead of ~24. A result past the
 * listpack limit before its trim is stored once more with ZUNIONSTORE, so
 * a feed never stays a skiplist for having been over the limit mid-way.
 *
 * The shebang makes Redis refuse the whole script when it is over
 * maxmemory, instead of failing at some write in the middle.
 *
 * Arguments, after KEYS[1] = the marker:
 *   epoch, n, then per part: gen field, off field, generation, offset the
 *   chunk starts from ("" = none), offset it moves to ("" = unchanged);
 *   then feed cap, outbox cap, notification cap, publish (1, or 0 for a
 *   generation rebuilt aside); then operations, each an
 *   opcode followed by its arguments:
 *     F user nrem nadd rem... (score member)...   feed:{user} changes
 *     P post author created_at visibility reply_to|"" text   PostCreated
 *     D post author                               PostDeleted
 *     L post count|""                             like count ("" = 0)
 *     h key n (field value)*n                     HSET
 *     k key field value                           HSETNX
 *     x key field                                 HDEL
 *     s key member / S key member                 SADD / SREM
 *     n key score member / N key member           capped ZADD / ZREM
 *
 * A capped ZADD that trims (notif:{U}) keeps the highest entry it ever
 * trimmed in notif-mark:{U} (a sorted set of one: Redis's own order
 * decides which is higher): above it the list holds every notification
 * that was not withdrawn, below it only what came after the trim, so that
 * `feedline verify` knows where the list is exact.
 */
#include "fl_redis_int.h"

const char fl_redis_flush_lua[] =
    "#!lua\n"
    "local call, unpack, m = redis.call, unpack, KEYS[1]\n"
    "local n = tonumber(ARGV[2])\n"
    "local f = {'epoch'}\n"
    "for p = 0, n - 1 do\n"
    "  f[#f + 1] = ARGV[3 + 5 * p]\n"
    "  f[#f + 1] = ARGV[4 + 5 * p]\n"
    "end\n"
    "local cur = call('HMGET', m, unpack(f))\n"
    "if not cur[1] then return redis.error_reply('FLLOST the marker is gone') end\n"
    "if cur[1] ~= ARGV[1] then return redis.error_reply('FLLOST the marker was recreated') end\n"
    "local fresh, dup = 0, 0\n"
    "for p = 0, n - 1 do\n"
    "  local a = 3 + 5 * p\n"
    "  if cur[2 + 2 * p] ~= ARGV[a + 2] then\n"
    "    return redis.error_reply('FLFENCED ' .. ARGV[a] .. ' has a newer owner')\n"
    "  end\n"
    "  local off = cur[3 + 2 * p] or ''\n"
    "  if off == ARGV[a + 3] then\n"
    "    if ARGV[a + 3] ~= ARGV[a + 4] and ARGV[a + 4] ~= '' then fresh = fresh + 1 end\n"
    "  elseif off == ARGV[a + 4] then\n"
    "    dup = dup + 1\n"
    "  else\n"
    "    return redis.error_reply('FLFENCED ' .. ARGV[a + 1] .. ' is at ' .. off)\n"
    "  end\n"
    "end\n"
    "if dup > 0 then\n"
    "  if fresh > 0 then return redis.error_reply('FLFENCED offsets partly ahead') end\n"
    "  return 'DUP'\n"
    "end\n"
    "local fcap = tonumber(ARGV[3 + 5 * n])\n"
    "local ocap = tonumber(ARGV[4 + 5 * n])\n"
    "local ncap = tonumber(ARGV[5 + 5 * n])\n"
    "local quiet = ARGV[6 + 5 * n] ~= '1'\n"
    "local i, N = 7 + 5 * n, #ARGV\n"
    "local FEW, BULK, TMP, LONG = 2, 16, 'feedline:sink:{tmp}', string.rep('~', 200)\n"
    "local function pub(ch, ev, p)\n"
    "  if quiet then return end\n"
    "  call('PUBLISH', ch, '{\"event\":\"' .. ev .. '\",\"post_id\":\"' .. p .. '\"}')\n"
    "end\n"
    "while i <= N do\n"
    "  local op = ARGV[i]\n"
    "  if op == 'F' then\n"
    "    local u, nr, na = ARGV[i + 1], tonumber(ARGV[i + 2]), tonumber(ARGV[i + 3])\n"
    "    local key, ch = 'feed:{' .. u .. '}', 'user:{' .. u .. '}'\n"
    "    i = i + 4\n"
    "    if nr > 0 and nr <= FEW then\n"
    "      for k = i, i + nr - 1 do\n"
    "        if call('ZREM', key, ARGV[k]) == 1 then pub(ch, 'delete', ARGV[k]) end\n"
    "      end\n"
    "      i = i + nr\n"
    "    elseif nr > 0 then\n"
    "      local sc = call('ZMSCORE', key, unpack(ARGV, i, i + nr - 1))\n"
    "      local gone = {}\n"
    "      for k = 1, nr do\n"
    "        if sc[k] then gone[#gone + 1] = ARGV[i + k - 1] end\n"
    "      end\n"
    "      if #gone > 0 then\n"
    "        call('ZREM', key, unpack(gone))\n"
    "        for _, x in ipairs(gone) do pub(ch, 'delete', x) end\n"
    "      end\n"
    "      i = i + nr\n"
    "    end\n"
    "    local card, new, args, few = 0, {}, {}, na <= FEW\n"
    "    if na > 0 and few then\n"
    "      for k = i, i + 2 * na - 1, 2 do\n"
    "        if call('ZADD', key, 'NX', ARGV[k], ARGV[k + 1]) == 1 then\n"
    "          new[#new + 1] = ARGV[k + 1]\n"
    "        end\n"
    "      end\n"
    "      card = call('ZCARD', key) - #new\n"
    "    elseif na > 0 then\n"
    "      card = call('ZCARD', key)\n"
    "      local top = -1\n"
    "      if card > 0 then top = tonumber(call('ZRANGE', key, -1, -1, 'WITHSCORES')[2]) end\n"
    "      local old, olds = {}, {}\n"
    "      for k = 0, na - 1 do\n"
    "        local sc, mem = ARGV[i + 2 * k], ARGV[i + 2 * k + 1]\n"
    "        if tonumber(sc) > top then\n"
    "          new[#new + 1] = mem\n"
    "          args[#args + 1] = sc\n"
    "          args[#args + 1] = mem\n"
    "        else\n"
    "          old[#old + 1] = mem\n"
    "          olds[#olds + 1] = sc\n"
    "        end\n"
    "      end\n"
    "      if #old > 8 then\n"
    "        local have = {}\n"
    "        for _, x in ipairs(call('ZRANGE', key, 0, -1)) do have[x] = true end\n"
    "        for k = 1, #old do\n"
    "          if not have[old[k]] then\n"
    "            new[#new + 1] = old[k]\n"
    "            args[#args + 1] = olds[k]\n"
    "            args[#args + 1] = old[k]\n"
    "          end\n"
    "        end\n"
    "      elseif #old > 0 then\n"
    "        local sc = call('ZMSCORE', key, unpack(old))\n"
    "        for k = 1, #old do\n"
    "          if not sc[k] then\n"
    "            new[#new + 1] = old[k]\n"
    "            args[#args + 1] = olds[k]\n"
    "            args[#args + 1] = old[k]\n"
    "          end\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    if #new > 0 then\n"
    "      local dst = key\n"
    "      if #new >= BULK then\n"
    "        dst = TMP\n"
    "        call('DEL', TMP)\n"
    "        call('ZADD', TMP, 0, LONG, unpack(args))\n"
    "        call('ZREM', TMP, LONG)\n"
    "        call('ZUNIONSTORE', TMP, 2, key, TMP)\n"
    "      elseif not few then\n"
    "        call('ZADD', key, unpack(args))\n"
    "      end\n"
    "      card = card + #new\n"
    "      local trimmed = {}\n"
    "      if card > fcap then\n"
    "        local g = call('ZRANGE', dst, 0, card - fcap - 1)\n"
    "        call('ZREMRANGEBYRANK', dst, 0, card - fcap - 1)\n"
    "        local isnew = {}\n"
    "        for _, x in ipairs(new) do isnew[x] = true end\n"
    "        for _, x in ipairs(g) do\n"
    "          trimmed[x] = true\n"
    "          if not isnew[x] then pub(ch, 'delete', x) end\n"
    "        end\n"
    "      end\n"
    "      for _, x in ipairs(new) do\n"
    "        if not trimmed[x] then pub(ch, 'update', x) end\n"
    "      end\n"
    "      if dst == TMP then\n"
    "        if card > fcap and call('OBJECT', 'ENCODING', TMP) ~= 'listpack' then\n"
    "          call('ZUNIONSTORE', key, 1, TMP)\n"
    "          call('DEL', TMP)\n"
    "        else\n"
    "          call('RENAME', TMP, key)\n"
    "        end\n"
    "      end\n"
    "    end\n"
    "    i = i + 2 * na\n"
    "  elseif op == 'P' then\n"
    "    local p, a, t = ARGV[i + 1], ARGV[i + 2], ARGV[i + 3]\n"
    "    local pk = 'post:{' .. p .. '}'\n"
    "    if call('EXISTS', pk, 'post-deleted:{' .. p .. '}') == 0 then\n"
    "      local lk = 'post-likes:{' .. p .. '}'\n"
    "      local likes = call('GET', lk)\n"
    "      if likes then call('DEL', lk) else likes = '0' end\n"
    "      if ARGV[i + 5] == '' then\n"
    "        call('HSET', pk, 'author_id', a, 'created_at', t, 'visibility', ARGV[i + 4],\n"
    "             'text', ARGV[i + 6], 'like_count', likes)\n"
    "      else\n"
    "        call('HSET', pk, 'author_id', a, 'created_at', t, 'visibility', ARGV[i + 4],\n"
    "             'text', ARGV[i + 6], 'like_count', likes, 'reply_to', ARGV[i + 5])\n"
    "      end\n"
    "      local ob = 'outbox:{' .. a .. '}'\n"
    "      call('ZADD', ob, t, p)\n"
    "      call('ZREMRANGEBYRANK', ob, 0, -ocap - 1)\n"
    "    end\n"
    "    i = i + 7\n"
    "  elseif op == 'D' then\n"
    "    local p, a = ARGV[i + 1], ARGV[i + 2]\n"
    "    local pk = 'post:{' .. p .. '}'\n"
    "    local owner = call('HGET', pk, 'author_id')\n"
    "    if not owner or owner == a then\n"
    "      call('DEL', pk, 'post-likes:{' .. p .. '}')\n"
    "      call('SET', 'post-deleted:{' .. p .. '}', a)\n"
    "      call('ZREM', 'outbox:{' .. a .. '}', p)\n"
    "    end\n"
    "    i = i + 3\n"
    "  elseif op == 'L' then\n"
    "    local p, v = ARGV[i + 1], ARGV[i + 2]\n"
    "    local pk = 'post:{' .. p .. '}'\n"
    "    if call('EXISTS', pk) == 1 then\n"
    "      if v == '' then v = '0' end\n"
    "      call('HSET', pk, 'like_count', v)\n"
    "    elseif v == '' then\n"
    "      call('DEL', 'post-likes:{' .. p .. '}')\n"
    "    elseif call('EXISTS', 'post-deleted:{' .. p .. '}') == 0 then\n"
    "      call('SET', 'post-likes:{' .. p .. '}', v)\n"
    "    end\n"
    "    i = i + 3\n"
    "  elseif op == 'h' then\n"
    "    local nf = tonumber(ARGV[i + 2])\n"
    "    call('HSET', ARGV[i + 1], unpack(ARGV, i + 3, i + 2 + 2 * nf))\n"
    "    i = i + 3 + 2 * nf\n"
    "  elseif op == 'k' then\n"
    "    call('HSETNX', ARGV[i + 1], ARGV[i + 2], ARGV[i + 3])\n"
    "    i = i + 4\n"
    "  elseif op == 'x' then\n"
    "    call('HDEL', ARGV[i + 1], ARGV[i + 2])\n"
    "    i = i + 3\n"
    "  elseif op == 's' then\n"
    "    call('SADD', ARGV[i + 1], ARGV[i + 2])\n"
    "    i = i + 3\n"
    "  elseif op == 'S' then\n"
    "    call('SREM', ARGV[i + 1], ARGV[i + 2])\n"
    "    i = i + 3\n"
    "  elseif op == 'n' then\n"
    "    local k = ARGV[i + 1]\n"
    "    call('ZADD', k, ARGV[i + 2], ARGV[i + 3])\n"
    "    local over = call('ZCARD', k) - ncap\n"
    "    if over > 0 then\n"
    "      local g = call('ZRANGE', k, over - 1, over - 1, 'WITHSCORES')\n"
    "      call('ZREMRANGEBYRANK', k, 0, over - 1)\n"
    "      local mk = 'notif-mark:' .. string.sub(k, 7)\n"
    "      call('ZADD', mk, g[2], g[1])\n"
    "      call('ZREMRANGEBYRANK', mk, 0, -2)\n"
    "    end\n"
    "    i = i + 4\n"
    "  elseif op == 'N' then\n"
    "    call('ZREM', ARGV[i + 1], ARGV[i + 2])\n"
    "    i = i + 3\n"
    "  else\n"
    "    return redis.error_reply('FLBAD unknown operation ' .. tostring(op))\n"
    "  end\n"
    "end\n"
    "local set = {}\n"
    "for p = 0, n - 1 do\n"
    "  local a = 3 + 5 * p\n"
    "  if ARGV[a + 4] ~= '' then\n"
    "    set[#set + 1] = ARGV[a + 1]\n"
    "    set[#set + 1] = ARGV[a + 4]\n"
    "  end\n"
    "end\n"
    "if #set > 0 then call('HSET', m, unpack(set)) end\n"
    "return 'OK'\n";

const char fl_redis_claim_lua[] = "#!lua\n"
                                  "local m = KEYS[1]\n"
                                  "local epoch = redis.call('HGET', m, 'epoch')\n"
                                  "if not epoch then\n"
                                  "  epoch = ARGV[1]\n"
                                  "  redis.call('HSET', m, 'epoch', epoch)\n"
                                  "end\n"
                                  "local out = {epoch}\n"
                                  "for i = 2, #ARGV, 2 do\n"
                                  "  out[#out + 1] = redis.call('HINCRBY', m, ARGV[i], 1)\n"
                                  "  out[#out + 1] = redis.call('HGET', m, ARGV[i + 1]) or ''\n"
                                  "end\n"
                                  "return out\n";

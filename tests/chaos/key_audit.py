#!/usr/bin/env python3
"""Key audit of a redis-cli MONITOR capture (chaos.sh).

    key_audit.py MONITOR_FILE PREFIX FOREIGN_KEY

Every write command in the capture, from a client or from a Lua script
("[0 lua]"), must name only keys that start with PREFIX, and none may name
FOREIGN_KEY.  Scripts called by EVAL/EVALSHA must declare only such keys.
Prints "writes=N lua=M" on stdout; each offending line on stderr; exit 1 if
there is one.
"""
import re
import sys

# Commands that write, with how their keys are laid out: "first" (the first
# argument), "all" (every argument), "pairs" (every other one, from the
# first), "two" (the first two).
WRITES = {}
for c in ("set setnx setex psetex getset getdel getex append incr incrby "
          "incrbyfloat decr decrby hset hsetnx hmset hdel hincrby "
          "hincrbyfloat zadd zrem zincrby zremrangebyscore zremrangebyrank "
          "zremrangebylex zpopmin zpopmax xadd xtrim xdel xack xgroup "
          "xautoclaim xclaim expire pexpire expireat pexpireat persist "
          "lpush rpush lpushx rpushx lpop rpop lrem lset ltrim linsert sadd "
          "srem spop setrange setbit restore").split():
    WRITES[c] = "first"
for c in ("del", "unlink"):
    WRITES[c] = "all"
WRITES["mset"] = WRITES["msetnx"] = "pairs"
for c in ("rename", "renamenx", "copy", "lmove", "smove", "rpoplpush"):
    WRITES[c] = "two"
# Never acceptable from anything under test.
FORBIDDEN = {"flushall", "flushdb", "swapdb", "move", "migrate"}

TOKEN = re.compile(r'"((?:[^"\\]|\\.)*)"')
LINE = re.compile(r'^\d+\.\d+ \[(\d+) ([^\]]*)\] (.*)$')


def keys_of(cmd, args):
    kind = WRITES.get(cmd)
    if kind == "first":
        return args[:1]
    if kind == "all":
        return args
    if kind == "pairs":
        return args[0::2]
    if kind == "two":
        return args[:2]
    if cmd in ("eval", "evalsha", "eval_ro", "evalsha_ro", "fcall"):
        try:
            n = int(args[1])
        except (IndexError, ValueError):
            return []
        return args[2:2 + n]
    return None


def main():
    path, prefix, foreign = sys.argv[1:4]
    writes = lua = bad = 0
    with open(path, encoding="utf-8", errors="replace") as f:
        for raw in f:
            line = raw.rstrip("\n")
            m = LINE.match(line)
            if not m:
                continue  # "OK" and partial lines at a kill
            toks = TOKEN.findall(m.group(3))
            if not toks:
                continue
            cmd, args = toks[0].lower(), toks[1:]
            if cmd in FORBIDDEN:
                print("forbidden command: " + line, file=sys.stderr)
                bad += 1
                continue
            keys = keys_of(cmd, args)
            if keys is None:
                continue
            if cmd in WRITES:
                writes += 1
                if m.group(2) == "lua":
                    lua += 1
            for k in keys:
                if k == foreign or not k.startswith(prefix):
                    print("foreign key: " + line, file=sys.stderr)
                    bad += 1
                    break
    print("writes=%d lua=%d bad=%d" % (writes, lua, bad))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

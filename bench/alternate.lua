-- wrk script for `make bench`: one wrk run loads two paths of the same nginx
-- in alternating blocks of BLOCK requests (the block's path is chosen by
-- the request's number; with one request in flight per connection the
-- responses come back in about the order the requests went out), and times
-- each block by the wall clock and by the nginx worker's own CPU time
-- (/proc/PID/schedstat, nanoseconds on the CPU).
--
-- Why blocks, not one wrk run per path: on a shared VM the speed of a CPU
-- drifts by 20 % from one second to the next, so two runs of a few seconds
-- each differ by more than what is being measured. Blocks of a few
-- milliseconds each see the same machine.
--
-- wrk -t1 -s alternate.lua URL -- PATH_A PATH_B BLOCK WORKER_PID
-- prints: alternate blocks NA NB wall_ns WA WB cpu_ns CA CB non200 N
local ffi = require("ffi")
ffi.cdef[[
typedef struct { long tv_sec; long tv_nsec; } bench_timespec;
int clock_gettime(int clock, bench_timespec *ts);
]]
local CLOCK_MONOTONIC = 1
local ts = ffi.new("bench_timespec")

local function now_ns()
    ffi.C.clock_gettime(CLOCK_MONOTONIC, ts)
    return tonumber(ts.tv_sec) * 1e9 + tonumber(ts.tv_nsec)
end

local threads = {}

function setup(thread)
    table.insert(threads, thread)
end

function init(args)
    block = tonumber(args[3])
    schedstat = "/proc/" .. args[4] .. "/schedstat"
    requests = { wrk.format("GET", args[1]), wrk.format("GET", args[2]) }
    sent, answered, non200 = 0, 0, 0
    blocks, wall, cpu = { 0, 0 }, { 0, 0 }, { 0, 0 }
    mark_wall, mark_cpu = nil, nil
end

local function worker_cpu_ns()
    local f = assert(io.open(schedstat))
    local ns = f:read("*n")
    f:close()
    return ns
end

function request()
    local which = math.floor(sent / block) % 2 + 1
    sent = sent + 1
    return requests[which]
end

function response(status, headers, body)
    if status ~= 200 then
        non200 = non200 + 1
    end
    answered = answered + 1
    if answered % block == 0 then
        local w, c = now_ns(), worker_cpu_ns()
        -- The first block only starts the clocks: connections were opening.
        if mark_wall then
            local which = math.floor((answered - 1) / block) % 2 + 1
            blocks[which] = blocks[which] + 1
            wall[which] = wall[which] + (w - mark_wall)
            cpu[which] = cpu[which] + (c - mark_cpu)
        end
        mark_wall, mark_cpu = w, c
    end
end

function done(summary, latency, reqs)
    for _, t in ipairs(threads) do
        local n, w, c = t:get("blocks"), t:get("wall"), t:get("cpu")
        io.write(string.format(
            "alternate blocks %d %d wall_ns %.0f %.0f cpu_ns %.0f %.0f "
            .. "non200 %d\n", n[1], n[2], w[1], w[2], c[1], c[2],
            t:get("non200")))
    end
end

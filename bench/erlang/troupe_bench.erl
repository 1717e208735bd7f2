%% The Erlang/OTP side of `npm run bench -- peers` (bench/peers.ts): the same work as troupe's
%% cases, timed inside the VM. Each function prints one line `RESULT <key> <value>` per figure.
%%   local_oneway(N)   one process sends N {inc, I, <<"bench">>} to a counter (guards check the shape)
%%   spawn(N)          spawn N idle processes (seconds) and their bytes each (erlang:memory(processes))
%%   dist_server()     register echo and sink servers for dist_client/3 on another node
%%   dist_client(Node, RttN, OnewayN)  RTT (p50, p99 in µs) and one-way msgs/s to Node
-module(troupe_bench).
-compile({no_auto_import, [spawn/1]}).
-export([local_oneway/1, spawn/1, dist_server/0, dist_client/3, main/1]).

%% `erl -noshell -s troupe_bench main <what> <args…>`, arguments as atoms.
main([What | Args]) ->
    Ints = [list_to_integer(atom_to_list(A)) || A <- Args, is_integer(catch list_to_integer(atom_to_list(A)))],
    case What of
        local_oneway -> [N] = Ints, local_oneway(N), local_oneway(N);
        spawn -> [N] = Ints, spawn(N);
        dist_server -> dist_server();
        dist_client -> [Node | _] = Args, [RttN, OnewayN] = Ints, dist_client(Node, RttN, OnewayN)
    end,
    case What of
        dist_server -> ok;
        _ -> init:stop()
    end.

result(Key, Value) -> io:format("RESULT ~s ~p~n", [Key, Value]).

counter(0, Sum, Parent) -> Parent ! {done, Sum};
counter(Left, Sum, Parent) ->
    receive
        {inc, I, Tag} when is_integer(I), is_binary(Tag) -> counter(Left - 1, Sum + I, Parent)
    end.

send_all(_Pid, I, N) when I > N -> ok;
send_all(Pid, I, N) -> Pid ! {inc, I, <<"bench">>}, send_all(Pid, I + 1, N).

local_oneway(N) ->
    Self = self(),
    T0 = erlang:monotonic_time(nanosecond),
    Pid = erlang:spawn(fun() -> counter(N, 0, Self) end),
    send_all(Pid, 1, N),
    receive {done, _} -> ok end,
    T1 = erlang:monotonic_time(nanosecond),
    result("local_oneway", N / ((T1 - T0) / 1.0e9)).

idle() -> receive stop -> ok end.

spawn(N) ->
    erlang:garbage_collect(),
    M0 = erlang:memory(processes),
    T0 = erlang:monotonic_time(nanosecond),
    Pids = [erlang:spawn(fun idle/0) || _ <- lists:seq(1, N)],
    T1 = erlang:monotonic_time(nanosecond),
    M1 = erlang:memory(processes),
    result("spawn_seconds", (T1 - T0) / 1.0e9),
    result("process_bytes", (M1 - M0) / N),
    [P ! stop || P <- Pids],
    ok.

dist_server() ->
    register(echo, erlang:spawn(fun echo/0)),
    register(sink, erlang:spawn(fun() -> sink_wait() end)),
    io:format("READY~n").

echo() ->
    receive {From, {inc, I, Tag} = M} when is_integer(I), is_binary(Tag) -> From ! M end,
    echo().

sink_wait() ->
    receive {arm, N, From} -> From ! armed, sink(N, From) end.

sink(0, From) -> From ! done, sink_wait();
sink(Left, From) ->
    receive {inc, I, Tag} when is_integer(I), is_binary(Tag) -> sink(Left - 1, From) end.

rtts(_Node, 0, Acc) -> Acc;
rtts(Node, K, Acc) ->
    T0 = erlang:monotonic_time(nanosecond),
    {echo, Node} ! {self(), {inc, K, <<"bench">>}},
    receive {inc, K, _} -> ok end,
    T1 = erlang:monotonic_time(nanosecond),
    rtts(Node, K - 1, [(T1 - T0) / 1000 | Acc]).

%% Nearest-rank percentile, as bench/stats.ts.
pct(Sorted, P) ->
    N = length(Sorted),
    Rank = max(1, min(N, ceil(P * N / 100 - 1.0e-9))),
    lists:nth(Rank, Sorted).

dist_client(Node, RttN, OnewayN) ->
    pong = net_adm:ping(Node),
    timer:sleep(200),
    _ = rtts(Node, RttN div 5, []),
    Sorted = lists:sort(rtts(Node, RttN, [])),
    result("dist_rtt_p50_us", pct(Sorted, 50)),
    result("dist_rtt_p99_us", pct(Sorted, 99)),
    oneway(Node, OnewayN div 5),
    T = oneway(Node, OnewayN),
    result("dist_oneway", T).

oneway(Node, N) ->
    {sink, Node} ! {arm, N, self()},
    receive armed -> ok end,
    T0 = erlang:monotonic_time(nanosecond),
    send_all({sink, Node}, 1, N),
    receive done -> ok end,
    T1 = erlang:monotonic_time(nanosecond),
    N / ((T1 - T0) / 1.0e9).

"""A trace of many small events (Issue 20, item 12: 10M events, 834 MB of JSON), to measure the
loader's peak memory where the columns, not the JSON, are the weight.

    python bench/many_events.py OUT.json [N]      # N events (default 10,000,000)
    /usr/bin/time -v python -c "from trainprof.trace import load_trace; load_trace('OUT.json')"

CPU ops of a few names on one thread, 100 per ProfilerStep span, each about 83 bytes of JSON.
"""
import sys

NAMES = ("aten::add", "aten::mul", "aten::empty", "aten::copy_", "aten::view")


def main(path: str, n: int) -> None:
    with open(path, "w") as f:
        f.write('{"schemaVersion": 1, "traceEvents": [\n')
        step, t = 0, 1000.0
        for i in range(n):
            if i % 100 == 0:
                f.write(f'{{"ph":"X","cat":"user_annotation","name":"ProfilerStep#{step}","pid":7,"tid":7,'
                        f'"ts":{t:.3f},"dur":{100 * 2.5:.3f}}},\n')
                step += 1
            f.write(f'{{"ph":"X","cat":"cpu_op","name":"{NAMES[i % 5]}","pid":7,"tid":7,"ts":{t:.3f},"dur":1.5}},\n')
            t += 2.5
        f.write('{"ph":"M","name":"thread_name","pid":7,"tid":7,"args":{"name":"python"}}\n]}\n')


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]) if len(sys.argv) > 2 else 10_000_000)

"""stream-lines: n stdout events "line <i>\n" (one write each, so one event each), optionally
delay_ms apart, then returns n. Benchmarks use it with large n for events per second."""
import sys
import time


def main(n: int = 5, delay_ms: int = 0):
    out = sys.stdout
    for index in range(n):
        out.write(f"line {index}\n")
        out.flush()
        if delay_ms > 0:
            time.sleep(delay_ms / 1000.0)  # asyncio.sleep is not available to python inferlets
    return n

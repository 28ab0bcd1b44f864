"""sleeper: announces itself on stdout, blocks `seconds`, returns "slept". A process that stays
alive long enough to be listed, attached to and terminated."""
import time


def main(seconds: float = 30.0):
    print("sleeping", seconds, flush=True)
    time.sleep(seconds)  # asyncio.sleep is not available to python inferlets
    return "slept"

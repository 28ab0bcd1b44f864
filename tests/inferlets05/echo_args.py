"""echo-args: shows the keyword arguments it was launched with in all three output channels:
one print() (stdout, one event per write), one message (a JSON object), and the return value."""
import json


def main(**arguments):
    from inferlet import session

    print("args:", json.dumps(arguments, sort_keys=True))
    session.send({"args": arguments})
    return arguments

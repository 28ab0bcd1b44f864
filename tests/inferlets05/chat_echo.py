"""chat-echo: a conversation driven by the client. Sends `greeting` first (so the client knows it
is listening), then answers each client message with "echo: <message>"; "quit" ends it with
{"echoed": <number of messages answered>}."""


async def main(greeting: str = "ready"):
    from inferlet import session

    session.send(greeting)
    answered = 0
    while (message := await session.receive()) != "quit":
        session.send(f"echo: {message}")
        answered += 1
    return {"echoed": answered}

"""file-echo: asks for a file with the message "send me a file", sends the bytes it receives back
as a file, returns their length. The client must wait for that message before sending: the
server drops a file that arrives before the inferlet waits for it (PROTOCOL-0.5.md §5.9)."""


async def main():
    from inferlet import session

    session.send("send me a file")
    received = await session.receive_file()
    session.send_file(received)
    return len(received)

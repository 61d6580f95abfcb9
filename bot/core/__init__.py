"""Plain types every layer shares: chats and messages, the handoff contract, live sockets,
the clock, request categories."""

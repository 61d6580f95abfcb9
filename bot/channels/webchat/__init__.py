"""The built-in WeChat-style webchat: residents' private chats and group rooms over websockets."""

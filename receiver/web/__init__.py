"""The incidents page, login, signed-link confirm pages (server-rendered, no build step)."""

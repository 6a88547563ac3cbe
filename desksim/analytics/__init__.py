"""Analytics over finished runs: realism statistics (stylised facts) of trades and quotes."""

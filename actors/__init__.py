"""Market participants: the exchange, market makers, background traders, the desk."""

"""FIX 4.4 on the real quickfix package (order entry between desk and exchange)."""

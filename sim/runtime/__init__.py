"""Runtimes: ``local`` runs every actor in one process; ``ray`` (later) spreads them."""

"""Runnable examples of Twofold services; each one is served and tested as is."""

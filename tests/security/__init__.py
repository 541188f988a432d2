"""Attacks on a real ``twofold serve``: each test starts the catalog, attacks it,
and checks that everyone else is still served."""

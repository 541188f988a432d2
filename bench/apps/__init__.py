"""The ASGI apps the benchmark serves: Twofold's, and loaders for peer apps kept outside."""

"""docs/compatibility.md: a service in two versions, and what `twofold check` says."""

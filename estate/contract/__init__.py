"""Azure's contract for the offline plan."""

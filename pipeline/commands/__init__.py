"""One module per stage's click commands (thin: options -> settings -> one library call)."""

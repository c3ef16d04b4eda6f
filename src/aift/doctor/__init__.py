"""`aift doctor`: is this machine fit to run aift's defaults, and if not, what fixes it."""

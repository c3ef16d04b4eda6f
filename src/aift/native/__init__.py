"""Native libraries on the machine they run on: which CPU code llama.cpp may execute."""

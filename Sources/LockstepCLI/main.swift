// The `lockstep` command line lands with the runner (issue 3).
print("lockstep: the runner is not built yet")

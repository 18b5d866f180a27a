"""Which runners are loaded, for how long, and who waits (`scheduler`); one runner process's channel
(`handle`); memory estimates (`memory`); a runner without a model for tests (`fakerunner`)."""

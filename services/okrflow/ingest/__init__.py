"""The live worker: consume, batch, count (in its counting helper process or itself), write,
dead-letter and commit, one transaction a batch; its supervisor; and `okrflow offsets`."""

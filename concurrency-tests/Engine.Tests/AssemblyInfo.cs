// Systematic tests report any Engine.Sync operation by a thread they do not control as a bug, so no other test may
// run concurrently with one: xunit's parallel collections are switched off for this assembly.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

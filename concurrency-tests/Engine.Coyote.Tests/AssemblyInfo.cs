// Both schedulers report any Engine.Sync operation by a thread they do not control as a bug, and a process has one
// scheduling hook at a time: no two tests of this assembly may run at once.
[assembly: CollectionBehavior(DisableTestParallelization = true)]

using Engine.Sync;

namespace Engine;

/// <summary>The machine's live processes (the kernel's task list, for what this model needs of it: exit all, check all).</summary>
internal sealed class ProcessTable
{
    private readonly Spinlock _lock = new();
    private readonly List<Process> _processes = [];

    public Process Add(Process process)
    {
        _lock.Enter();
        _processes.Add(process);
        _lock.Exit();
        return process;
    }

    public void Remove(Process process)
    {
        _lock.Enter();
        _processes.Remove(process);
        _lock.Exit();
    }

    /// <summary>A snapshot of the processes that have not exited.</summary>
    public IReadOnlyList<Process> Live()
    {
        _lock.Enter();
        var copy = _processes.ToArray();
        _lock.Exit();
        return copy;
    }
}

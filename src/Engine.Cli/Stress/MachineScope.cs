namespace Engine.Cli.Stress;

/// <summary>
/// The machine of a stress run, disposed when the run ends, unless a thread of the run hung inside it
/// (<see cref="Abandoned"/>): disposing exits the processes, whose zaps may wait for a page lock, a frozen count or a
/// swap-cache entry that the hung thread left as it was, and the run would never report. The process exits without it
/// (the run's threads are background threads).
/// </summary>
internal sealed class MachineScope(Machine machine) : IDisposable
{
    /// <summary>Set when a thread did not stop: the machine is then left as it is.</summary>
    public bool Abandoned { get; set; }

    public void Dispose()
    {
        if (!Abandoned)
        {
            machine.Dispose();
        }
    }
}

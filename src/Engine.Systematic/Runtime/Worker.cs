namespace Engine.Systematic.Runtime;

/// <summary>
/// A pooled OS thread that runs logical threads, one at a time, for one <see cref="ControlledRuntime"/>. Workers are
/// reused across iterations (Coyote starts a thread per operation; reuse is most of our speed-up). A worker that the
/// watchdog gave up on is marked <see cref="Dead"/> and never reused; if its thread ever comes back it exits.
/// </summary>
internal sealed class Worker
{
    private readonly ControlledRuntime _runtime;
    private readonly Thread _thread;
    private volatile bool _exit;
    private volatile bool _dead;

    public Worker(ControlledRuntime runtime, string name)
    {
        _runtime = runtime;
        _thread = new Thread(Loop) { IsBackground = true, Name = name };
        _thread.Start();
    }

    public Parker Parker { get; } = new();

    /// <summary>The logical thread this worker runs in the current iteration, if any.</summary>
    public Operation? Assigned { get; set; }

    public bool Dead
    {
        get => _dead;
        set => _dead = value;
    }

    public void Stop()
    {
        _exit = true;
        Parker.Unpark();
    }

    private void Loop()
    {
        while (true)
        {
            Parker.Park();
            if (_exit || _dead)
            {
                return;
            }

            if (Assigned is { } operation)
            {
                _runtime.Execute(operation);
            }

            if (_dead)
            {
                return;
            }
        }
    }
}

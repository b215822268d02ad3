namespace Engine.Systematic.Strategies;

/// <summary>What a strategy sees at a scheduling decision.</summary>
internal readonly ref struct SchedulingContext
{
    public SchedulingContext(ReadOnlySpan<int> enabled, int current, int currentThreadStep, bool currentEnabled, bool yielding, int step)
    {
        Enabled = enabled;
        Current = current;
        CurrentThreadStep = currentThreadStep;
        CurrentEnabled = currentEnabled;
        Yielding = yielding;
        Step = step;
    }

    /// <summary>Ids of the enabled threads, ascending. Never empty.</summary>
    public ReadOnlySpan<int> Enabled { get; }

    /// <summary>The thread that reached the scheduling point (it may be disabled or finished).</summary>
    public int Current { get; }

    /// <summary>How many times <see cref="Current"/> has been chosen to run so far in this iteration.</summary>
    public int CurrentThreadStep { get; }

    /// <summary>True when <see cref="Current"/> may continue: choosing another thread is then a preemption.</summary>
    public bool CurrentEnabled { get; }

    /// <summary>True when <see cref="Current"/> called <c>SchedulingPoint.Yield</c>.</summary>
    public bool Yielding { get; }

    /// <summary>The index of this decision in the iteration.</summary>
    public int Step { get; }

    /// <summary>The thread to run when nobody is preempted: the current one if it can go on, else the lowest id.</summary>
    public int NonPreemptiveChoice => CurrentEnabled ? Current : Enabled[0];

    public bool IsEnabled(int id) => Enabled.IndexOf(id) >= 0;
}

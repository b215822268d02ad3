namespace Engine.Systematic.Strategies;

/// <summary>
/// Probabilistic Concurrency Testing (Burckhardt, Kothari, Musuvathi and Nagarakatte, ASPLOS 2010).
/// <para>
/// Each thread gets a random priority when it is created (inserted at a random rank); the highest-priority enabled
/// thread always runs. At <c>d</c> change points, chosen uniformly among the first k steps (k is the run's estimate
/// of an iteration's length), the thread that would run drops to the lowest priority. One iteration finds a bug of
/// depth d+1 with probability at least 1/(n·k^d) for n threads. <see cref="Engine.Sync.SchedulingPoint.Yield"/>
/// drops the caller to the lowest priority, as in Coyote.
/// </para>
/// </summary>
internal sealed class PctStrategy(int changePoints) : SchedulingStrategy
{
    private readonly List<int> _priorities = [];
    private readonly int[] _changeSteps = new int[Math.Max(changePoints, 0)];
    private SplitMix64 _random;

    public override string Name => $"pct({changePoints})";

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        _random = new SplitMix64(seed);
        _priorities.Clear();
        var span = Math.Max(stepsEstimate, changePoints + 1);
        for (var i = 0; i < _changeSteps.Length; i++)
        {
            // Distinct steps in [1, span]; with span > changePoints the retry loop ends quickly.
            int candidate;
            do
            {
                candidate = 1 + _random.NextInt(span);
            }
            while (Array.IndexOf(_changeSteps, candidate, 0, i) >= 0);
            _changeSteps[i] = candidate;
        }

        return true;
    }

    public override void OnThreadCreated(int id) => _priorities.Insert(_random.NextInt(_priorities.Count + 1), id);

    public override int NextThread(in SchedulingContext context)
    {
        if (context.Yielding && context.CurrentEnabled)
        {
            Demote(context.Current);
        }

        var chosen = HighestEnabled(context);
        if (Array.IndexOf(_changeSteps, context.Step) >= 0)
        {
            Demote(chosen);
            chosen = HighestEnabled(context);
        }

        return chosen;
    }

    public override int NextInteger(int maxValue, int step) => _random.NextInt(maxValue);

    private int HighestEnabled(in SchedulingContext context)
    {
        foreach (var id in _priorities)
        {
            if (context.IsEnabled(id))
            {
                return id;
            }
        }

        // Unreachable while every created thread is registered; keep the scheduler total anyway.
        return context.Enabled[0];
    }

    private void Demote(int id)
    {
        if (_priorities.Remove(id))
        {
            _priorities.Add(id);
        }
    }
}

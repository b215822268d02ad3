namespace Engine.Systematic.Strategies;

/// <summary>
/// Exhaustive depth-first exploration with a preemption bound, as CHESS does it (Musuvathi and Qadeer, PLDI 2007).
/// <para>
/// The strategy keeps the stack of choice points of the current path across iterations. An iteration replays the
/// stack's prefix and, past it, takes the non-preemptive choice (keep the current thread; if it cannot go on, the
/// lowest enabled id), pushing a new choice point each time. After the iteration the deepest choice point that still
/// has an untried option within the bound is advanced and everything below it dropped. Switching away from a thread
/// that could go on costs one preemption; a path may spend at most the bound. Data choices are choice points too.
/// When the stack empties, every schedule with at most that many preemptions has been run:
/// <see cref="IsExhausted"/> turns true and the run stops, reporting that the bounded space is exhausted.
/// </para>
/// </summary>
internal sealed class DfsStrategy(int preemptionBound) : SchedulingStrategy
{
    private readonly List<ChoicePoint> _stack = [];
    private int _depth;
    private int _preemptions;
    private bool _started;
    private bool _exhausted;

    public override string Name => $"dfs({preemptionBound})";

    public override bool IsExhausted => _exhausted;

    public override bool UsesFairnessFallback => false;

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        if (_started && !Backtrack())
        {
            _exhausted = true;
            return false;
        }

        _started = true;
        _depth = 0;
        _preemptions = 0;
        return true;
    }

    public override int NextThread(in SchedulingContext context)
    {
        ChoicePoint point;
        if (_depth < _stack.Count && _stack[_depth].Matches(context))
        {
            point = _stack[_depth];
        }
        else
        {
            if (_depth < _stack.Count)
            {
                // The program offered different options on a replayed prefix (nondeterminism): explore afresh from here.
                _stack.RemoveRange(_depth, _stack.Count - _depth);
            }

            point = ChoicePoint.ForSchedule(context, _preemptions);
            _stack.Add(point);
        }

        _depth++;
        var chosen = point.Options[point.Chosen];
        if (context.CurrentEnabled && chosen != context.Current)
        {
            _preemptions++;
        }

        return chosen;
    }

    public override int NextInteger(int maxValue, int step)
    {
        ChoicePoint point;
        if (_depth < _stack.Count && _stack[_depth].IsData && _stack[_depth].Options.Length == maxValue)
        {
            point = _stack[_depth];
        }
        else
        {
            _stack.RemoveRange(_depth, _stack.Count - _depth);
            point = ChoicePoint.ForData(maxValue, _preemptions);
            _stack.Add(point);
        }

        _depth++;
        return point.Options[point.Chosen];
    }

    public override void OnIterationEnd(bool bugFound)
    {
        // An iteration that ended early (a bug, the step bound) leaves deeper stale points: they are not on this path.
        if (_depth < _stack.Count)
        {
            _stack.RemoveRange(_depth, _stack.Count - _depth);
        }
    }

    private bool Backtrack()
    {
        while (_stack.Count > 0)
        {
            var top = _stack[^1];
            for (var next = top.Chosen + 1; next < top.Options.Length; next++)
            {
                var costsPreemption = !top.IsData && top.CurrentEnabled && top.Options[next] != top.Current;
                if (!costsPreemption || top.PreemptionsBefore < preemptionBound)
                {
                    top.Chosen = next;
                    return true;
                }
            }

            _stack.RemoveAt(_stack.Count - 1);
        }

        return false;
    }

    private sealed class ChoicePoint
    {
        private ChoicePoint(int[] options, bool isData, int current, bool currentEnabled, int preemptionsBefore)
        {
            Options = options;
            IsData = isData;
            Current = current;
            CurrentEnabled = currentEnabled;
            PreemptionsBefore = preemptionsBefore;
        }

        /// <summary>The options in exploration order: the non-preemptive one first.</summary>
        public int[] Options { get; }

        public bool IsData { get; }

        public int Current { get; }

        public bool CurrentEnabled { get; }

        public int PreemptionsBefore { get; }

        public int Chosen { get; set; }

        public static ChoicePoint ForSchedule(in SchedulingContext context, int preemptionsBefore)
        {
            var enabled = context.Enabled;
            var options = new int[enabled.Length];
            var first = context.NonPreemptiveChoice;
            options[0] = first;
            var at = 1;
            foreach (var id in enabled)
            {
                if (id != first)
                {
                    options[at++] = id;
                }
            }

            return new ChoicePoint(options, isData: false, context.Current, context.CurrentEnabled, preemptionsBefore);
        }

        public static ChoicePoint ForData(int maxValue, int preemptionsBefore)
        {
            var options = new int[Math.Max(maxValue, 1)];
            for (var i = 0; i < options.Length; i++)
            {
                options[i] = i;
            }

            return new ChoicePoint(options, isData: true, current: -1, currentEnabled: false, preemptionsBefore);
        }

        public bool Matches(in SchedulingContext context)
        {
            if (IsData || Current != context.Current || CurrentEnabled != context.CurrentEnabled || Options.Length != context.Enabled.Length)
            {
                return false;
            }

            foreach (var id in Options)
            {
                if (!context.IsEnabled(id))
                {
                    return false;
                }
            }

            return true;
        }
    }
}

namespace Engine.Systematic.Strategies;

/// <summary>
/// The default: a fixed rotation of complementary strategies, one per iteration (iteration i uses member
/// i mod n). PCT with few change points finds shallow ordering bugs, PCT with many finds deeper ones, random is fair
/// and finds bugs needing many switches, and probabilistic finds bugs needing long runs of one thread. The
/// rotation depends only on the iteration index, so the schedule of an iteration is fixed by (seed, iteration).
/// </summary>
internal sealed class PortfolioStrategy : SchedulingStrategy
{
    private readonly SchedulingStrategy[] _members =
    [
        new RandomStrategy(),
        new PctStrategy(1),
        new PctStrategy(3),
        new ProbabilisticStrategy(2),
        new PctStrategy(10),
        new ProbabilisticStrategy(4),
    ];

    private SchedulingStrategy _active;

    public PortfolioStrategy() => _active = _members[0];

    /// <summary>The member that runs the current iteration.</summary>
    public override string Name => _active.Name;

    public override bool IsFair => _active.IsFair;

    public override bool PrepareIteration(int iteration, ulong seed, int stepsEstimate)
    {
        _active = _members[iteration % _members.Length];
        return _active.PrepareIteration(iteration, seed, stepsEstimate);
    }

    public override int NextThread(in SchedulingContext context) => _active.NextThread(context);

    public override int NextInteger(int maxValue, int step) => _active.NextInteger(maxValue, step);

    public override void OnThreadCreated(int id) => _active.OnThreadCreated(id);

    public override void OnIterationEnd(bool bugFound) => _active.OnIterationEnd(bugFound);
}

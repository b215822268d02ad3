using Engine.Sync;

namespace Engine.Invariants;

/// <summary>
/// Violations found while the machine runs (a use-after-free on an access, a PTE stored without its PTL, a broken
/// lock contract): kept until <c>Machine.CheckInvariants</c> reports them with what it finds at quiescence.
/// Recording is the slow path of a failed check and may allocate.
/// </summary>
internal sealed class ViolationLog
{
    private readonly Spinlock _lock = new();
    private readonly List<InvariantViolation> _violations = [];

    public void Record(InvariantViolation violation)
    {
        _lock.Enter();
        _violations.Add(violation);
        _lock.Exit();
    }

    /// <summary>Everything recorded so far.</summary>
    public List<InvariantViolation> Snapshot()
    {
        _lock.Enter();
        var copy = new List<InvariantViolation>(_violations);
        _lock.Exit();
        return copy;
    }
}

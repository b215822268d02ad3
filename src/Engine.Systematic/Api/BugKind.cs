namespace Engine.Systematic;

/// <summary>What kind of bug an iteration found.</summary>
public enum BugKind
{
    /// <summary>A <see cref="Specification.Assert(bool, string)"/> failed.</summary>
    Assertion,
    /// <summary>A controlled thread threw an exception it did not handle.</summary>
    Exception,
    /// <summary>No thread could run while some were still waiting.</summary>
    Deadlock,
    /// <summary>The iteration reached the step bound (reported only when configured).</summary>
    Hang,
    /// <summary>Concurrency the tester does not control: an uncontrolled thread used Engine.Sync, or a controlled one blocked outside it.</summary>
    Uncontrolled,
}

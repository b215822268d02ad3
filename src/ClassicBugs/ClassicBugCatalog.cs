using Engine.Systematic;

namespace ClassicBugs;

/// <summary>The classic bugs the tester must find (issue 2), in the order the docs' table lists them.</summary>
public static class ClassicBugCatalog
{
    /// <summary>All of them.</summary>
    public static IReadOnlyList<ClassicBug> All { get; } =
    [
        new("lost-update", "read then write instead of an atomic increment: two increments, one survives",
            BugKind.Assertion, LostUpdate.Buggy, LostUpdate.Correct),
        new("lazy-init", "check-then-act lazy initialisation: two threads both see null and both construct",
            BugKind.Assertion, LazyInitialization.Buggy, LazyInitialization.Correct),
        new("lock-order", "two spinlocks taken in opposite orders by two threads",
            BugKind.Deadlock, LockOrderDeadlock.Buggy, LockOrderDeadlock.Correct),
        new("aba-stack", "Treiber stack reusing nodes: a stale compare-and-swap on the head succeeds after pop, pop, push",
            BugKind.Assertion, AbaStack.Buggy, AbaStack.Correct),
        new("torn-read", "a two-word value read while a writer updates it, without a sequence counter",
            BugKind.Assertion, TornRead.Buggy, TornRead.Correct),
        new("missed-wakeup", "a sleeper checks, then announces it sleeps: the waker's signal falls in between",
            BugKind.Deadlock, MissedWakeup.Buggy, MissedWakeup.Correct),
    ];

    /// <summary>The bug called <paramref name="name"/>.</summary>
    public static ClassicBug Get(string name) => All.FirstOrDefault(b => b.Name == name)
        ?? throw new ArgumentException($"No classic bug named '{name}'. Known: {string.Join(", ", All.Select(b => b.Name))}.", nameof(name));
}

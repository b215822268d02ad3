using Engine.Sync;
using Engine.Systematic;

namespace ClassicBugs;

/// <summary>Two threads get a lazily created singleton; it must be constructed once and both must see the same one.</summary>
public static class LazyInitialization
{
    /// <summary>Check for null, then construct and publish: both threads can pass the check.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void Buggy() => Run(static cell =>
    {
        var instance = Atomic.Read(ref cell.Instance);
        if (instance is null)
        {
            instance = new Singleton();
            Atomic.Increment(ref cell.Constructions);
            Atomic.Write(ref cell.Instance, instance);
        }

        return instance;
    });

    /// <summary>Construct, then publish with a compare-and-swap; the loser counts nothing and adopts the winner's.</summary>
    [SystematicTest]
    public static void Correct() => Run(static cell =>
    {
        var instance = Atomic.Read(ref cell.Instance);
        if (instance is not null)
        {
            return instance;
        }

        var created = new Singleton();
        var winner = Atomic.CompareExchange(ref cell.Instance, created, null);
        if (winner is not null)
        {
            return winner;
        }

        Atomic.Increment(ref cell.Constructions);
        return created;
    });

    private static void Run(Func<Cell, Singleton> get)
    {
        var cell = new Cell();
        Singleton? first = null;
        var other = ControlledThread.Start(() => first = get(cell), "getter1");
        var second = get(cell);
        other.Join();
        var constructions = Atomic.Read(ref cell.Constructions);
        Specification.Assert(constructions == 1, $"the singleton was constructed {constructions} times");
        Specification.Assert(ReferenceEquals(first, second), "the two threads got different instances");
    }

    private sealed class Cell
    {
        public Singleton? Instance;
        public int Constructions;
    }

    private sealed class Singleton;
}

using Engine.Sync;
using Engine.Systematic;

namespace ClassicBugs;

/// <summary>Two threads increment a counter. The buggy one reads and writes back; the correct one increments atomically.</summary>
public static class LostUpdate
{
    private const int Threads = 2;

    /// <summary>Read, then write the value plus one: a switch in between loses an increment.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void Buggy() => Run(static (ref int counter) =>
    {
        var seen = Atomic.Read(ref counter);
        Atomic.Write(ref counter, seen + 1);
    });

    /// <summary>One atomic increment.</summary>
    [SystematicTest]
    public static void Correct() => Run(static (ref int counter) => Atomic.Increment(ref counter));

    private delegate void Increment(ref int counter);

    private static void Run(Increment increment)
    {
        var box = new StrongBox<int>();
        var threads = new ControlledThread[Threads];
        for (var i = 0; i < Threads; i++)
        {
            threads[i] = ControlledThread.Start(() => increment(ref box.Value), $"incrementer{i}");
        }

        foreach (var thread in threads)
        {
            thread.Join();
        }

        var final = Atomic.Read(ref box.Value);
        Specification.Assert(final == Threads, $"lost update: {Threads} increments left the counter at {final}");
    }

    private sealed class StrongBox<T>
    {
        public T Value = default!;
    }
}

using Engine.Sync;
using Engine.Systematic;

namespace ClassicBugs;

/// <summary>
/// A writer updates a two-word value (both words always equal); a reader must never see a mix of two versions.
/// </summary>
public static class TornRead
{
    private const int Versions = 2;

    /// <summary>The reader reads the two words with nothing to tell it a writer ran in between.</summary>
    [SystematicTest(ExpectBug = true)]
    public static void Buggy()
    {
        var pair = new long[2];
        var writer = ControlledThread.Start(() =>
        {
            for (long v = 1; v <= Versions; v++)
            {
                Atomic.Write(ref pair[0], v);
                Atomic.Write(ref pair[1], v);
            }
        }, "writer");

        var low = Atomic.Read(ref pair[0]);
        var high = Atomic.Read(ref pair[1]);
        writer.Join();
        Specification.Assert(low == high, $"torn read: words {low} and {high} come from different versions");
    }

    /// <summary>The writer brackets its stores with a sequence counter; the reader retries until the count is stable.</summary>
    [SystematicTest]
    public static void Correct()
    {
        var pair = new long[2];
        var sequence = new SequenceCounter();
        var writer = ControlledThread.Start(() =>
        {
            for (long v = 1; v <= Versions; v++)
            {
                sequence.WriteBegin();
                Atomic.Write(ref pair[0], v);
                Atomic.Write(ref pair[1], v);
                sequence.WriteEnd();
            }
        }, "writer");

        long low, high;
        int start;
        do
        {
            start = sequence.ReadBegin();
            low = Atomic.Read(ref pair[0]);
            high = Atomic.Read(ref pair[1]);
        }
        while (sequence.ReadRetry(start));

        writer.Join();
        Specification.Assert(low == high, $"torn read: words {low} and {high} come from different versions");
    }
}

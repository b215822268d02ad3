using System.Diagnostics;
using System.Runtime.CompilerServices;

namespace Engine.Sync;

/// <summary>
/// A sequence counter, the model of the kernel's <c>seqcount_t</c> (for example <c>mm-&gt;write_protect_seq</c>).
/// <para>
/// Protocol. Writers are serialised by a lock the caller holds; <see cref="WriteBegin"/> makes the count odd and
/// <see cref="WriteEnd"/> makes it even again, each with a full barrier, so the protected stores cannot leak out of
/// the window. A reader takes a start value with <see cref="ReadBegin"/> (which waits for an even count) or
/// <see cref="TryReadBegin"/> (which gives up on an odd one, as GUP-fast does), reads the protected words
/// <em>through <see cref="Atomic.Read(ref long, string, int)"/></em> — acquire loads, so the final counter load cannot
/// be satisfied before them — and calls <see cref="ReadRetry"/>: true means a writer intervened and the values read
/// may be torn.
/// </para>
/// </summary>
public sealed class SequenceCounter
{
    private int _sequence;

    /// <summary>The current count. Odd while a writer is inside its window.</summary>
    public int Value => Volatile.Read(ref _sequence);

    /// <summary>Waits until no writer is active and returns the count to validate against.</summary>
    public int ReadBegin([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        while (true)
        {
            // Re-check parity on every read: a writer may open a new window between the wait and the read.
            var start = Atomic.Read(ref _sequence, file, line);
            if ((start & 1) == 0)
            {
                return start;
            }

            Wait.Until(this, static s => (Volatile.Read(ref s._sequence) & 1) == 0, file, line);
        }
    }

    /// <summary>Returns false, without waiting, when a writer is active; otherwise the count to validate against.</summary>
    public bool TryReadBegin(out int start, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        start = Atomic.Read(ref _sequence, file, line);
        return (start & 1) == 0;
    }

    /// <summary>True when a writer ran since <paramref name="start"/>: whatever was read must be discarded.</summary>
    public bool ReadRetry(int start, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
        => Atomic.Read(ref _sequence, file, line) != start;

    /// <summary>Opens a write window. Enter with the writers' lock held.</summary>
    public void WriteBegin([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        var now = Atomic.Increment(ref _sequence, file, line);
        Debug.Assert((now & 1) == 1, "SequenceCounter.WriteBegin inside another write window: writers must be serialised");
    }

    /// <summary>Closes the write window opened by <see cref="WriteBegin"/>.</summary>
    public void WriteEnd([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        var now = Atomic.Increment(ref _sequence, file, line);
        Debug.Assert((now & 1) == 0, "SequenceCounter.WriteEnd without WriteBegin");
    }
}

using Engine.Sync;

namespace Engine.Systematic;

/// <summary>
/// A protocol step the code under test marked (<see cref="ProtocolEvents.Mark"/>), as a schedule records it: after
/// decision <see cref="Step"/> (the thread's last scheduling step before the event; −1 before the first), on thread
/// <see cref="Thread"/>. The rest is the <see cref="ProtocolEvent"/>: the kernel function modelled, a format string
/// and its data.
/// </summary>
/// <param name="Step">The index of the last decision before the event (−1: none yet).</param>
/// <param name="Thread">The logical thread that marked it.</param>
/// <param name="Function">The kernel function modelled.</param>
/// <param name="What">The format string of what it saw or changed (see <see cref="ProtocolEvent"/>).</param>
/// <param name="Pfn">The frame concerned, or −1.</param>
/// <param name="Address">The address concerned, or 0.</param>
/// <param name="Value">A value.</param>
/// <param name="Value2">A second value.</param>
public readonly record struct TraceEvent(int Step, int Thread, string Function, string What, long Pfn, ulong Address, long Value, long Value2)
{
    /// <summary>Records <paramref name="protocolEvent"/> as marked on <paramref name="thread"/> after decision <paramref name="step"/>.</summary>
    public static TraceEvent Of(int step, int thread, in ProtocolEvent protocolEvent)
        => new(step, thread, protocolEvent.Function, protocolEvent.What, protocolEvent.Pfn, protocolEvent.Address, protocolEvent.Value, protocolEvent.Value2);

    /// <summary>The event as <see cref="ProtocolEvent"/>.</summary>
    [System.Text.Json.Serialization.JsonIgnore]
    public ProtocolEvent Event => new(Function, What, Pfn, Address, Value, Value2);

    /// <summary>
    /// What the step saw or changed, its data formatted in. A format string a trace file corrupted (this one was not
    /// written by the engine) is shown as it is, with the data after it, rather than failing the report.
    /// </summary>
    public string Describe()
    {
        try
        {
            return Event.Describe();
        }
        catch (FormatException)
        {
            return $"{What} (pfn {Pfn}, address 0x{Address:x}, values {Value}, {Value2})";
        }
    }

    /// <summary><c>function: what</c>.</summary>
    public override string ToString() => $"{Function}: {Describe()}";
}

using System.Globalization;

namespace Engine.Sync;

/// <summary>
/// One protocol step in kernel terms, as a failure report tells it: the kernel function the engine's code models
/// (<see cref="Function"/>, e.g. <c>zap_pte_range</c>) and what it saw or changed (<see cref="What"/>, a composite
/// format string over the event's data: <c>{0}</c> the pfn, <c>{1}</c> the address, <c>{2}</c> and <c>{3}</c> two
/// values). The data stays numbers until <see cref="Describe"/> is called, so recording an event allocates nothing.
/// </summary>
/// <param name="Function">The kernel function modelled, a string literal.</param>
/// <param name="What">A composite format string, a string literal (see the type's summary for the placeholders).</param>
/// <param name="Pfn">The page frame the step concerns, or −1.</param>
/// <param name="Address">The user address the step concerns, or 0.</param>
/// <param name="Value">A value the step saw or wrote (a count, a CPU mask, an entry).</param>
/// <param name="Value2">A second value (the count after a change, a CPU).</param>
public readonly record struct ProtocolEvent(string Function, string What, long Pfn, ulong Address, long Value, long Value2)
{
    /// <summary>
    /// What the step saw or changed, its data formatted in (invariant culture). Besides the standard numeric formats,
    /// <c>cpus</c> prints a CPU mask as a set: <c>{2:cpus}</c> of 5 is <c>{0,2}</c>.
    /// </summary>
    public string Describe() => string.Format(EventFormat.Instance, What, Pfn, Address, Value, Value2);

    /// <summary><c>function: what</c>, as a report prints it.</summary>
    public override string ToString() => $"{Function}: {Describe()}";

    /// <summary>Whether the step concerns frame <paramref name="pfn"/> or the page of <paramref name="address"/> (0: none).</summary>
    public bool Concerns(long pfn, ulong address)
        => (pfn >= 0 && Pfn == pfn) || (address != 0 && Address != 0 && (Address >> 12) == (address >> 12));
}

/// <summary>Invariant-culture formatting with one addition: the <c>cpus</c> format of a mask.</summary>
internal sealed class EventFormat : IFormatProvider, ICustomFormatter
{
    public static readonly EventFormat Instance = new();

    public object? GetFormat(Type? formatType) => formatType == typeof(ICustomFormatter) ? this : CultureInfo.InvariantCulture.GetFormat(formatType);

    public string Format(string? format, object? arg, IFormatProvider? formatProvider)
    {
        if (format == "cpus" && arg is long mask)
        {
            var cpus = new List<int>();
            for (var bits = (ulong)mask; bits != 0; bits &= bits - 1)
            {
                cpus.Add(System.Numerics.BitOperations.TrailingZeroCount(bits));
            }

            return "{" + string.Join(",", cpus) + "}";
        }

        return arg is IFormattable formattable ? formattable.ToString(format, CultureInfo.InvariantCulture) : arg?.ToString() ?? "";
    }
}

using System.Globalization;

namespace Engine.Invariants;

/// <summary>
/// One broken invariant: its <see cref="Kind"/>, the objects it concerns (those that apply; the others are null)
/// and a sentence saying what was found. Tools match <see cref="Kind"/>, people read <see cref="Message"/>.
/// </summary>
/// <param name="Kind">Which invariant.</param>
/// <param name="Message">What was found, naming the objects.</param>
public sealed record InvariantViolation(ViolationKind Kind, string Message)
{
    /// <summary>The frame concerned.</summary>
    public long? Pfn { get; init; }

    /// <summary>The virtual address concerned.</summary>
    public ulong? Address { get; init; }

    /// <summary>The CPU concerned.</summary>
    public int? Cpu { get; init; }

    /// <summary>The process (mm) concerned.</summary>
    public int? Pid { get; init; }

    /// <summary>The value the invariant requires, where it is a number.</summary>
    public long? Expected { get; init; }

    /// <summary>The value found, where it is a number.</summary>
    public long? Actual { get; init; }

    /// <summary>A violation whose message is formatted with the invariant culture.</summary>
    public static InvariantViolation Of(ViolationKind kind, FormattableString message) => new(kind, message.ToString(CultureInfo.InvariantCulture));

    /// <inheritdoc/>
    public override string ToString() => $"{Kind}: {Message}";
}

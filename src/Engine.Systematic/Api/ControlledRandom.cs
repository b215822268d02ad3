using System.Runtime.CompilerServices;
using Engine.Systematic.Runtime;

namespace Engine.Systematic;

/// <summary>
/// Data nondeterminism. Under the tester each value is chosen by the strategy (exhaustively, by DFS) and recorded in
/// the trace, so a replay makes the same choices; under an <see cref="IExternalScheduler"/> that scheduler chooses and
/// records it; outside both, values come from <see cref="Random.Shared"/>.
/// </summary>
public static class ControlledRandom
{
    /// <summary>A boolean chosen by the scheduler.</summary>
    public static bool RandomBoolean([CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
        => ControlledRuntime.Current is { } current
            ? current.Runtime.NextInteger(current, 2, DecisionKind.Boolean, file, line) != 0
            : ExternalScheduler.Controlling is { } external
                ? external.NextInteger(2, DecisionKind.Boolean, file, line) != 0
                : Random.Shared.Next(2) != 0;

    /// <summary>An integer in [0, <paramref name="maxValue"/>) chosen by the scheduler.</summary>
    public static int RandomInteger(int maxValue, [CallerFilePath] string file = "", [CallerLineNumber] int line = 0)
    {
        ArgumentOutOfRangeException.ThrowIfNegativeOrZero(maxValue);
        return ControlledRuntime.Current is { } current
            ? current.Runtime.NextInteger(current, maxValue, DecisionKind.Integer, file, line)
            : ExternalScheduler.Controlling is { } external
                ? external.NextInteger(maxValue, DecisionKind.Integer, file, line)
                : Random.Shared.Next(maxValue);
    }
}

using Engine.Systematic.Runtime;

namespace Engine.Systematic;

/// <summary>Properties a test states about its execution.</summary>
public static class Specification
{
    /// <summary>
    /// Fails the iteration when <paramref name="condition"/> is false: under the tester (or an
    /// <see cref="IExternalScheduler"/>) the bug is recorded with its schedule and the iteration ends; outside it an
    /// <see cref="AssertionFailureException"/> is thrown.
    /// </summary>
    public static void Assert(bool condition, string message)
    {
        if (!condition)
        {
            Fail(message);
        }
    }

    /// <summary>Fails the iteration unconditionally.</summary>
    public static void Fail(string message)
    {
        if (ControlledRuntime.Current is { } current)
        {
            current.Runtime.ReportAssertionFailure(current, message);
        }

        ExternalScheduler.Controlling?.Fail(message);

        throw new AssertionFailureException(message);
    }
}

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

    /// <summary>
    /// As <see cref="Assert(bool, string)"/>, stating what kind of bug a failure is: <paramref name="category"/> is
    /// carried to the report (<see cref="BugReport.Category"/>, and the exception's
    /// <see cref="AssertionFailureException.Category"/> outside the tester), through replays and minimisation, under
    /// either scheduler. Tools match the category; people read the message, which it does not change.
    /// </summary>
    public static void Assert(bool condition, string category, string message)
    {
        if (!condition)
        {
            Fail(category, message);
        }
    }

    /// <summary>Fails the iteration unconditionally.</summary>
    public static void Fail(string message) => Report(null, message);

    /// <summary>Fails the iteration unconditionally with a bug of <paramref name="category"/> (see <see cref="Assert(bool, string, string)"/>).</summary>
    public static void Fail(string category, string message)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(category);
        Report(category, message);
    }

    private static void Report(string? category, string message)
    {
        if (ControlledRuntime.Current is { } current)
        {
            current.Runtime.ReportAssertionFailure(current, message, category);
        }

        ExternalScheduler.Controlling?.Fail(message, category);

        throw new AssertionFailureException(message) { Category = category };
    }
}

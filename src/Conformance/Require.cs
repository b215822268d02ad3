namespace Conformance;

/// <summary>
/// The checks a scenario makes on its own preparation and steps (not on the property it tests): each throws a
/// <see cref="ConformanceException"/> that says what was expected and what was found.
/// </summary>
internal static class Require
{
    /// <summary>Throws with <paramref name="message"/> unless <paramref name="condition"/>.</summary>
    public static void That(bool condition, string message)
    {
        if (!condition)
        {
            throw new ConformanceException(message);
        }
    }

    /// <summary>Throws unless <paramref name="actual"/> equals <paramref name="expected"/>; <paramref name="what"/> names the value.</summary>
    public static void Equal<T>(T expected, T actual, string what)
    {
        if (!EqualityComparer<T>.Default.Equals(expected, actual))
        {
            throw new ConformanceException($"{what}: expected {expected}, found {actual}");
        }
    }
}

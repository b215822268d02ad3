namespace Engine.Systematic;

/// <summary>
/// Marks a public, parameterless method (static, or on a class with a public parameterless constructor) as a
/// systematic test body for <c>engine test</c>, as Coyote's <c>[Test]</c> does for <c>coyote test</c>.
/// </summary>
[AttributeUsage(AttributeTargets.Method, AllowMultiple = false, Inherited = false)]
public sealed class SystematicTestAttribute : Attribute
{
    /// <summary>True when the body is meant to fail (a known-buggy example): <c>engine test</c> then reports finding the bug as expected.</summary>
    public bool ExpectBug { get; init; }
}

using System.Reflection;

namespace Engine.Cli.Discovery;

/// <summary>A <c>[SystematicTest]</c> method found in a test assembly.</summary>
internal sealed record DiscoveredTest(string AssemblyPath, MethodInfo Method, bool ExpectBug)
{
    /// <summary>Namespace-qualified type name, a dot, and the method name.</summary>
    public string Name => $"{Method.DeclaringType!.FullName}.{Method.Name}";

    /// <summary>A body that calls the method (on a fresh instance per iteration for instance methods).</summary>
    public Action CreateBody()
    {
        var method = Method;
        if (method.IsStatic)
        {
            return method.CreateDelegate<Action>();
        }

        var type = method.DeclaringType!;
        return () => method.Invoke(Activator.CreateInstance(type), null);
    }
}

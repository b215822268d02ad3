using System.Reflection;
using Engine.Cli.Commands;
using Engine.Systematic;

namespace Engine.Cli.Discovery;

/// <summary>Finds the systematic tests of an assembly.</summary>
internal static class TestDiscovery
{
    /// <summary>
    /// Loads <paramref name="assemblyPath"/> into the default load context (so it shares Engine.Sync and
    /// Engine.Systematic with this process, and with them the scheduling hook) and returns its
    /// <c>[SystematicTest]</c> methods whose full name equals or ends with <paramref name="filter"/>, if one is given.
    /// </summary>
    public static IReadOnlyList<DiscoveredTest> Find(string assemblyPath, string? filter)
    {
        var fullPath = Path.GetFullPath(assemblyPath);
        if (!File.Exists(fullPath))
        {
            throw new UsageException($"No test assembly at '{fullPath}'.");
        }

        Assembly assembly;
        try
        {
            assembly = Assembly.LoadFrom(fullPath);
        }
        catch (BadImageFormatException)
        {
            throw new UsageException($"'{fullPath}' is not a .NET assembly.");
        }

        var tests = new List<DiscoveredTest>();
        foreach (var type in assembly.GetExportedTypes())
        {
            foreach (var method in type.GetMethods(BindingFlags.Public | BindingFlags.Static | BindingFlags.Instance | BindingFlags.DeclaredOnly))
            {
                if (method.GetCustomAttribute<SystematicTestAttribute>() is not { } attribute)
                {
                    continue;
                }

                if (method.GetParameters().Length != 0 || method.ReturnType != typeof(void))
                {
                    throw new UsageException($"[SystematicTest] {type.FullName}.{method.Name} must take no parameters and return void.");
                }

                var test = new DiscoveredTest(fullPath, method, attribute.ExpectBug);
                if (filter is null || test.Name == filter || test.Name.EndsWith("." + filter, StringComparison.Ordinal))
                {
                    tests.Add(test);
                }
            }
        }

        return tests.OrderBy(t => t.Name, StringComparer.Ordinal).ToList();
    }
}

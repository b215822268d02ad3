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
        var fullPath = Inputs.ReadableFile(assemblyPath, "test assembly");
        Type[] types;
        try
        {
            types = Assembly.LoadFrom(fullPath).GetExportedTypes();
        }
        catch (BadImageFormatException)
        {
            throw new UsageException($"'{fullPath}' is not a .NET assembly.");
        }
        catch (Exception e) when (e is FileLoadException or FileNotFoundException or ReflectionTypeLoadException or TypeLoadException or IOException or NotSupportedException)
        {
            // A .NET assembly this process cannot load, or whose types need assemblies that are not beside it.
            throw new UsageException($"Cannot load the test assembly '{fullPath}': {e.Message.Split('\n')[0].Trim()}", e);
        }

        var tests = new List<DiscoveredTest>();
        foreach (var type in types)
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

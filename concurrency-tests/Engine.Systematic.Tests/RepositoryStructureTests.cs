namespace Engine.Systematic.Tests;

/// <summary>The product (everything under <c>src/</c>) stands on its own: the tests depend on it, never the reverse.</summary>
public sealed class RepositoryStructureTests
{
    [Fact]
    public void NoProjectUnderSrcReferencesTheTestTree()
    {
        var root = RepositoryRoot();
        var projects = Directory.EnumerateFiles(Path.Combine(root, "src"), "*.csproj", SearchOption.AllDirectories)
            .Where(p => !p.Contains($"{Path.DirectorySeparatorChar}obj{Path.DirectorySeparatorChar}", StringComparison.Ordinal))
            .ToList();

        // Vacuity guard: the engine, its primitives, both schedulers, the scenarios and the CLI were all read.
        Assert.True(projects.Count >= 7, $"only {projects.Count} projects found under {root}/src");
        Assert.DoesNotContain(projects, p => File.ReadAllText(p).Contains("concurrency-tests", StringComparison.Ordinal));
    }

    private static string RepositoryRoot()
    {
        for (var directory = new DirectoryInfo(AppContext.BaseDirectory); directory is not null; directory = directory.Parent)
        {
            if (File.Exists(Path.Combine(directory.FullName, "Engine.sln")))
            {
                return directory.FullName;
            }
        }

        throw new InvalidOperationException($"Engine.sln not found above {AppContext.BaseDirectory}.");
    }
}
